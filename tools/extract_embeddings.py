#!/usr/bin/env python
"""One L2-normalised embedding per video of a list (pooled pre-logits features, averaged over views).

The same as `hiera-video embed` (implemented in hiera_video/commands/extract_embeddings.py); `--help` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hiera_video.commands.extract_embeddings import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
