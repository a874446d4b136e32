"""Finetune a Hiera video classifier.

    accelerate launch -m hiera_video finetune --cfg k400_hiera_l
    accelerate launch tools/finetune.py --cfg configs/k400_hiera_l.yaml    # the same, from a checkout
    hiera-video finetune --cfg synthetic_hiera_tiny train.epochs=3 output_dir=runs/try

Everything after --cfg is a `key=value` override of the YAML (dotted keys, values parsed as YAML).
Multi-GPU, multi-node and FSDP come from `accelerate config` / `accelerate launch` flags (DeepSpeed is
refused at the start: not supported yet). --cfg is a YAML file or a shipped config's name (`hiera-video configs`).
`train.resume=true` continues from output_dir/checkpoints/latest.
"""

import sys

from ..cli import train_command

main = train_command("finetune", __doc__)

if __name__ == "__main__":
    sys.exit(main())
