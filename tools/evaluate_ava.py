#!/usr/bin/env python
"""AVA v2.2 evaluation of a detector checkpoint: centre-crop inference on the val keyframes with the

The same as `hiera-video evaluate-ava` (implemented in hiera_video/commands/evaluate_ava.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.evaluate_ava import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
