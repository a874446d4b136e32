#!/usr/bin/env python
"""Frozen-feature probe (k-NN, 1-NN, linear) of any checkpoint, MAE encoders included.

The same as `hiera-video probe` (implemented in hiera_video/commands/probe.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.probe import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
