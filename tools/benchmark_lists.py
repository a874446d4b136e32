#!/usr/bin/env python
"""Private memory of DataLoader workers reading a Kinetics-sized list, flat arrays vs objects, as JSON.

The same as `hiera-video benchmark-lists` (implemented in hiera_video/commands/benchmark_lists.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.benchmark_lists import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
