#!/usr/bin/env python
"""Write the synthetic action dataset (8 classes in time-reversed pairs; see hiera_video/synthetic/actions.py).

The same as `hiera-video make-synthetic` (implemented in hiera_video/commands/make_synthetic.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.make_synthetic import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
