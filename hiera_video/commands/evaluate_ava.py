"""AVA v2.2 evaluation of a detector checkpoint: centre-crop inference on the val keyframes with the
person proposals, detections in the official CSV format, and the frame-level mAP at IoU 0.5.

    accelerate launch -m hiera_video evaluate-ava --cfg ava_hiera_l --ckpt runs/ava_hiera_l/model_best.pt
    hiera-video evaluate-ava --cfg synthetic_ava_hiera_tiny --ckpt runs/ava_demo/model_best.pt

Writes OUT/detections.csv (video_id, timestamp, x1, y1, x2, y2, action_id, score: one row per box and
evaluated class), OUT/metrics.json (mAP as a fraction, per-class AP) and OUT/per_class.csv; OUT
defaults to output_dir/eval_ava. `hiera-video ava-map` computes the same mAP from CSV files alone.
"""

import argparse
import json
import sys
from pathlib import Path

from ..cli import add_config_arguments, command
from ..config import load_config
from ..tasks.ava.task import evaluate_ava


def arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p, required=True, overrides=False)
    p.add_argument("--ckpt", required=True, help="a checkpoint written by task ava training")
    p.add_argument("--out", type=Path, help="report folder (default: output_dir/eval_ava)")
    p.add_argument("overrides", nargs="*", help="key=value config overrides")


@command(__doc__, arguments, logs=True)
def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.cfg, args.overrides)
    metrics = evaluate_ava(cfg, args.ckpt, args.out)
    if metrics:  # the main process's; the others return {}
        print(json.dumps({"mAP": metrics["mAP"], "classes": len(metrics["per_class"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
