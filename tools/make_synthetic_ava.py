#!/usr/bin/env python
"""Write a small synthetic AVA v2.2 dataset in the official layout (see hiera_video/tasks/ava/synthetic.py).

The same as `hiera-video make-synthetic-ava` (implemented in hiera_video/commands/make_synthetic_ava.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.make_synthetic_ava import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
