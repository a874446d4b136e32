#!/usr/bin/env python
"""Top-k action classes of one or more videos.

The same as `hiera-video predict` (implemented in hiera_video/commands/predict.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.predict import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
