"""MAE-pretrain a video Hiera (configs with `task: mae`).

    accelerate launch -m hiera_video pretrain --cfg k400_mae_hiera_l
    hiera-video pretrain --cfg synthetic_mae_hiera_tiny train.epochs=3 output_dir=runs/mae_try

The same loop as finetuning (Accelerate, exact resume, AMP, checkpoints, metrics.jsonl); the loss is
the MAE reconstruction loss and validation reports it under fixed masks. Finetune from the result with
`hiera-video finetune --cfg <classifier config> model.pretrained=<output_dir>/model_last.pt`.
"""

import sys

from ..cli import train_command

main = train_command("pretrain", __doc__)

if __name__ == "__main__":
    sys.exit(main())
