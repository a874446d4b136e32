#!/usr/bin/env python
"""The main job of `./run.sh`, on a fresh machine with no data and no GPU:

The same as `hiera-video demo` (implemented in hiera_video/commands/demo.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.demo import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
