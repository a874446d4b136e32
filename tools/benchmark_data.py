#!/usr/bin/env python
"""Decoded + augmented training clips per second, for each video backend, as JSON.

The same as `hiera-video benchmark-data` (implemented in hiera_video/commands/benchmark_data.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.benchmark_data import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
