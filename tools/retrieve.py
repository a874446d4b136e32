#!/usr/bin/env python
"""Nearest neighbours by cosine similarity in an embedding folder (`hiera-video embed`).

The same as `hiera-video retrieve` (implemented in hiera_video/commands/retrieve.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.retrieve import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
