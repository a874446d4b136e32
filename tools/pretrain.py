#!/usr/bin/env python
"""MAE-pretrain a video Hiera (configs with `task: mae`).

    accelerate launch tools/pretrain.py --cfg configs/k400_mae_hiera_l.yaml
    python tools/pretrain.py --cfg configs/synthetic_mae_hiera_tiny.yaml train.epochs=3 output_dir=runs/mae_try

The same loop as finetuning (Accelerate, exact resume, AMP, checkpoints, metrics.jsonl); the loss is
the MAE reconstruction loss and validation reports it under fixed masks. Finetune from the result with
`tools/finetune.py --cfg <classifier config> model.pretrained=<output_dir>/model_last.pt`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiera_video.cli import train_main  # noqa: E402


def main(argv=None) -> int:
    return train_main(argv, "mae", __doc__)


if __name__ == "__main__":
    sys.exit(main())
