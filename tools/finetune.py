#!/usr/bin/env python
"""Finetune a Hiera video classifier.

The same as `hiera-video finetune` (implemented in hiera_video/commands/finetune.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.finetune import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
