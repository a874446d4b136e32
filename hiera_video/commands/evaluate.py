"""Multi-view evaluation of a checkpoint on a data list.

    accelerate launch -m hiera_video evaluate --cfg k400_hiera_l --ckpt runs/k400_l/model_best.pt
    hiera-video evaluate --cfg k400_hiera_l --ckpt hiera_large_16x224.pth eval.num_temporal_clips=5

Every view of every video of eval.list (default data.val_list) is scored once: eval.num_temporal_clips x
eval.num_spatial_crops (Kinetics 5 x 3, SSv2 2 x 3), ensembled per video (eval.ensemble: prob, logit or
max). Writes OUT/metrics.json, predictions.csv, per_class.csv and confusion.png (OUT defaults to
output_dir/eval). --ckpt takes this project's checkpoints, official .pth files and HF folders.
"""

import argparse
import json
import sys

from ..cli import add_config_arguments, command, output_folder
from ..config import load_config
from ..engine.evaluate import evaluate


def arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p, required=True, overrides=False)
    p.add_argument("--ckpt", required=True, help="checkpoint file, HF folder, or URL")
    p.add_argument("--out", type=output_folder, help="report folder (default: output_dir/eval)")
    p.add_argument("--model", help="architecture for checkpoints that do not record it (default: model.name)")
    p.add_argument("overrides", nargs="*", help="key=value config overrides")


@command(__doc__, arguments, logs=True)
def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.cfg, args.overrides)
    metrics = evaluate(cfg, args.ckpt, args.out, args.model)
    if not metrics:  # not the main process
        return 0
    print(json.dumps({k: None if isinstance(v, float) and v != v else v  # NaN is not JSON
                      for k, v in metrics.items() if k != "unreadable"}))
    if metrics["num_unreadable"] >= metrics["num_videos"]:
        print(f"error: none of the {metrics['num_videos']} videos could be read (each is listed with its "
              f"reason in the report's predictions.csv); `hiera-video check-videos LIST` checks a list",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
