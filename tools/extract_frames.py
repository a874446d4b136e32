#!/usr/bin/env python
"""Frames folders from the videos of a list (mmaction2 rawframes layout), and the list that names them.

The same as `hiera-video extract-frames` (implemented in hiera_video/commands/extract_frames.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.extract_frames import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
