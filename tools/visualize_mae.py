#!/usr/bin/env python
"""Picture of an MAE at work on one video: frames, masked input, reconstruction, side by side.

The same as `hiera-video visualize-mae` (implemented in hiera_video/commands/visualize_mae.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.visualize_mae import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
