#!/usr/bin/env python
"""Frame-level AVA mAP of a results file, as the official ActivityNet evaluator computes it.

The same as `hiera-video ava-map` (implemented in hiera_video/commands/ava_map.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.ava_map import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
