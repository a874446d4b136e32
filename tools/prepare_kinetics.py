#!/usr/bin/env python
"""Build Kinetics data lists (`{split}.csv` of `path label` lines + `classes.txt`) in --out.

The same as `hiera-video prepare-kinetics` (implemented in hiera_video/commands/prepare_kinetics.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.prepare_kinetics import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
