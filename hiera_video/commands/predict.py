"""Top-k action classes of one or more videos.

    hiera-video predict clip.mp4 --ckpt hiera_large_16x224.pth --model hiera_large_16x224 \\
        --labels data_lists/kinetics400.txt
    hiera-video predict a.mp4 b.webm --ckpt runs/demo/finetune/model_best.pt --views 2,3 --json
    hiera-video predict clip.mp4 --ckpt model_best.pt --cfg synthetic_hiera_tiny data.num_frames=8

Positional arguments of the form key=value are config overrides (with --cfg), unless a file of that
name exists. In Python: `hiera_video.predict(paths, ckpt, k=5, views=(5, 3))`.

Each video is scored with --views T,S (temporal clips x spatial crops, default 5,3) and the view
probabilities averaged. A video that cannot be read is reported and the others still run (exit code 1
if any failed). Frames, sampling and crop come from --cfg if given, else from the checkpoint (this
project's checkpoints record them), else from the model (16x4 at 224 for the official ones).
"""

import argparse
import json
import sys

from ..api import load_classifier, predict
from ..cli import (ArgumentsError, add_config_arguments, command, device_arg, load_cli_config, positive_int,
                   split_overrides)
from ..engine.evaluate import parse_views


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="+", help="video files (and key=value config overrides)")
    p.add_argument("--ckpt", required=True, help="checkpoint file, HF folder or hub name")
    add_config_arguments(p, overrides=False)
    p.add_argument("--model", help="architecture for checkpoints that do not record it, e.g. hiera_large_16x224")
    p.add_argument("--labels", help="class names file, one per line, or a shipped list (kinetics400, ssv2, ...)")
    p.add_argument("--views", type=parse_views, default=(5, 3), help="temporal,spatial (default 5,3)")
    p.add_argument("--k", type=positive_int, default=5, help="classes per video (default 5)")
    p.add_argument("--device", type=device_arg, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of text")


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    videos, overrides = split_overrides(args.videos)
    if not videos:
        raise ArgumentsError(f"no video given: {' '.join(overrides)} read as key=value config overrides "
                             f"(no such files)")
    cfg = load_cli_config(args.cfg, overrides)
    model = load_classifier(args.ckpt, args.model, cfg, args.labels)
    results = predict(videos, model, k=args.k, views=args.views, device=args.device)
    if args.json:
        print(json.dumps(results, indent=2))
    for r in results:
        if r["error"] is not None:
            print(f"{r['path']}: cannot read: {r['error']}", file=sys.stderr)
        elif not args.json:
            print(f"{r['path']}:")
            for t in r["top"]:
                print(f"  {t['prob']:7.2%}  {t['class']}")
    return 1 if any(r["error"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
