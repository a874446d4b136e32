#!/usr/bin/env python
"""The MAE study: scratch vs MAE-then-finetune over seeds, frozen probes, a mask-ratio sweep.

The same as `hiera-video mae-study` (implemented in hiera_video/commands/mae_study.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.mae_study import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
