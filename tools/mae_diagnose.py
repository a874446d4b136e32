#!/usr/bin/env python
"""Is an MAE encoder healthy? Stage ranks beside a random init, and what the decoder reads.

The same as `hiera-video mae-diagnose` (implemented in hiera_video/commands/mae_diagnose.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.mae_diagnose import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
