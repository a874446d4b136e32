#!/usr/bin/env python
"""Finetune a Hiera video classifier.

    accelerate launch tools/finetune.py --cfg configs/k400_hiera_l.yaml
    python tools/finetune.py --cfg configs/synthetic_hiera_tiny.yaml train.epochs=3 output_dir=runs/try

Everything after --cfg is a `key=value` override of the YAML (dotted keys, values parsed as YAML).
Multi-GPU, multi-node, FSDP and DeepSpeed come from `accelerate config` / `accelerate launch` flags.
`train.resume=true` continues from output_dir/checkpoints/latest.
"""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiera_video.config import ConfigError, load_config  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", type=Path, required=True, help="YAML config (configs/*.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. train.epochs=3 data.train_list=/d/train.csv")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per file saved is noise
    try:
        cfg = load_config(args.cfg, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from hiera_video.engine.train import train
    try:
        metrics = train(cfg)
    except (FileExistsError, FileNotFoundError, ValueError) as e:  # bad paths or data: the message says which
        print(f"error: {e}", file=sys.stderr)
        return 2
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
