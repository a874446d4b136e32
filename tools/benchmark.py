#!/usr/bin/env python
"""Clips per second of a Hiera model, measured like the paper (see hiera_video/benchmark.py).

The same as `hiera-video benchmark` (implemented in hiera_video/commands/benchmark.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
