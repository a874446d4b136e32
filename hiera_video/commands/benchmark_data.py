"""Decoded + augmented training clips per second, for each video backend, as JSON.

    hiera-video benchmark-data --list data/k400_320/train.csv --workers 8 --clips 512
    hiera-video benchmark-data --make-pan-videos /tmp/pan320 --workers 2   # stand-in 320p H.264 set

The training path is timed as training runs it (16x4 clips, RandAugment m7-n2-mstd0.5 on the decoded
frames, random resized crop 224, flip; `--randaug-order after_crop` and `--train-short-side 256` time
the variants), after the first batch so that worker start-up does not count. `--soak CLIPS` instead
runs that many clips through persistent workers and records clips/s and each worker's memory per batch:

    hiera-video benchmark-data --list data/synthetic/train.csv --soak 6000 --workers 4 --json soak.json
"""

import argparse
import json
import sys
from pathlib import Path

from ..cli import command
from ..data.bench import benchmark_loader, make_pan_videos, soak
from ..data.decode import available_backends
from ..data.guard import DEFAULT_SECONDS
from ..data.lists import read_list
from ..fileio import atomic_write


def arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--list", type=Path, help="data list to read videos from")
    src.add_argument("--make-pan-videos", type=Path, metavar="DIR",
                     help="write (or reuse) 8 ten-second 426x320 H.264 panning-texture clips in DIR and use them")
    p.add_argument("--root", type=Path)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--backends", default=",".join(available_backends()),
                   help="comma-separated, from: auto, decord, pyav")
    p.add_argument("--mode", default="train", choices=["train", "eval"])
    p.add_argument("--crop-size", type=int, default=224)
    p.add_argument("--no-randaug", action="store_true")
    p.add_argument("--randaug-order", default="before_crop", choices=["before_crop", "after_crop"])
    p.add_argument("--train-short-side", type=int, help="resize decoded training frames to this short side first")
    p.add_argument("--decode-timeout", type=float, default=DEFAULT_SECONDS,
                   help=f"data.decode_timeout: seconds per video, 0 for no limit (default {DEFAULT_SECONDS:g})")
    p.add_argument("--soak", type=int, metavar="CLIPS",
                   help="instead: CLIPS random training clips through persistent workers, recording clips/s and "
                        "every worker's private memory per batch (a long run in minutes; first backend only)")
    p.add_argument("--json", type=Path, help="also write the results here")


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    list_path = make_pan_videos(args.make_pan_videos) if args.make_pan_videos else args.list
    entries = read_list(list_path, args.root)
    if args.soak:
        r = soak(entries, args.soak, args.workers, args.batch_size, args.crop_size, decode_timeout=args.decode_timeout)
        print(f"soak: {r['clips']} clips in {r['seconds']} s, {r['clips_per_s']} clips/s (first tenth "
              f"{r['clips_per_s_first_tenth']}, last {r['clips_per_s_last_tenth']}); worker MB first/last/max: "
              + ", ".join(f"{v['first']}/{v['last']}/{v['max']}" for v in r["workers_mb"].values()), file=sys.stderr)
        text = json.dumps({"list": str(list_path), "num_videos": len(entries), "soak": r})
        print(json.dumps({k: v for k, v in r.items() if k != "batches"}, indent=2))
        if args.json:
            atomic_write(args.json, text)
        return 0
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        r = benchmark_loader(entries, backend, args.workers, args.clips, args.mode, args.batch_size,
                             args.crop_size, randaug=not args.no_randaug, randaug_order=args.randaug_order,
                             short_side=args.train_short_side, decode_timeout=args.decode_timeout)
        print(f"{backend}: {r['clips_per_s']} clips/s with {args.workers} workers "
              f"({r['clips_per_s_per_worker']} per worker)", file=sys.stderr)
        results.append(r)
    out = {"list": str(list_path), "num_videos": len(entries), "results": results}
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
