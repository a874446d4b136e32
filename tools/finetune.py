#!/usr/bin/env python
"""Finetune a Hiera video classifier.

    accelerate launch tools/finetune.py --cfg configs/k400_hiera_l.yaml
    python tools/finetune.py --cfg configs/synthetic_hiera_tiny.yaml train.epochs=3 output_dir=runs/try

Everything after --cfg is a `key=value` override of the YAML (dotted keys, values parsed as YAML).
Multi-GPU, multi-node, FSDP and DeepSpeed come from `accelerate config` / `accelerate launch` flags.
`train.resume=true` continues from output_dir/checkpoints/latest.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiera_video.cli import train_main  # noqa: E402


def main(argv=None) -> int:
    return train_main(argv, "classify", __doc__)


if __name__ == "__main__":
    sys.exit(main())
