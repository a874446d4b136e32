#!/usr/bin/env python
"""Decode every entry of a data list and report the bad ones (missing, empty, non-video, truncated,

The same as `hiera-video check-videos` (implemented in hiera_video/commands/check_videos.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.check_videos import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
