#!/usr/bin/env python
"""Peak memory per process of resuming a sharded (FSDP2) checkpoint, broadcast vs every process reading.

The same as `hiera-video benchmark-resume` (implemented in hiera_video/commands/benchmark_resume.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.benchmark_resume import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
