#!/usr/bin/env python
"""Top-k action classes of one or more videos.

    python tools/predict.py clip.mp4 --ckpt hiera_large_16x224.pth --model hiera_large_16x224 \\
        --labels data_lists/kinetics400.txt
    python tools/predict.py a.mp4 b.webm --ckpt runs/demo/finetune/model_best.pt --views 2,3 --json

Each video is scored with --views T,S (temporal clips x spatial crops, default 5,3) and the view
probabilities averaged. A video that cannot be read is reported and the others still run (exit code 1
if any failed). Frames, sampling and crop come from --cfg if given, else from the checkpoint (this
project's checkpoints record them), else from the model (16x4 at 224 for the official ones).
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiera_video.config import ConfigError, load_config  # noqa: E402
from hiera_video.engine.evaluate import parse_views  # noqa: E402
from hiera_video.models.checkpoints import CheckpointError  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--cfg", type=Path, help="config whose data settings (frames, sampling, crop) to use")
    p.add_argument("--model", help="architecture for checkpoints that do not record it, e.g. hiera_large_16x224")
    p.add_argument("--labels", help="class names, one per line (e.g. data_lists/kinetics400.txt)")
    p.add_argument("--views", type=parse_views, default=(5, 3), help="temporal,spatial (default 5,3)")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of text")
    args = p.parse_args(argv)
    from hiera_video.engine.evaluate import class_names, clip_settings, load_model, predict_videos
    try:
        cfg = load_config(args.cfg) if args.cfg else None
        model, ckpt = load_model(args.ckpt, cfg, args.model)
        names = class_names(ckpt, cfg, args.labels, model.num_classes)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = predict_videos(model, clip_settings(model, ckpt, cfg), args.videos, names, *args.views, k=args.k,
                             device=args.device)
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
