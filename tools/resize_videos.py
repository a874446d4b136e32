#!/usr/bin/env python
"""Re-encode every video under --src to a short side of --short-side pixels (H.264 mp4, keyframe

The same as `hiera-video resize-videos` (implemented in hiera_video/commands/resize_videos.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.resize_videos import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
