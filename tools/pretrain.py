#!/usr/bin/env python
"""MAE-pretrain a video Hiera (configs with `task: mae`).

The same as `hiera-video pretrain` (implemented in hiera_video/commands/pretrain.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.pretrain import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
