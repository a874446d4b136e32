#!/usr/bin/env python
"""Person boxes with their top actions drawn on AVA keyframes, one PNG per keyframe.

The same as `hiera-video visualize-ava` (implemented in hiera_video/commands/visualize_ava.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.visualize_ava import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
