#!/usr/bin/env python
"""Build Something-Something-v2 data lists (`train.csv`, `validation.csv` of `path label` lines, and

The same as `hiera-video prepare-ssv2` (implemented in hiera_video/commands/prepare_ssv2.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.prepare_ssv2 import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
