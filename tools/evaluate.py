#!/usr/bin/env python
"""Multi-view evaluation of a checkpoint on a data list.

The same as `hiera-video evaluate` (implemented in hiera_video/commands/evaluate.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
