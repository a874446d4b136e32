#!/usr/bin/env python
"""Does sparsity pay? The MAE encoder's cost per clip with masked units deleted (ratio 0.9) and with

The same as `hiera-video benchmark-mae` (implemented in hiera_video/commands/benchmark_mae.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.benchmark_mae import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
