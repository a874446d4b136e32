"""Write a small synthetic AVA v2.2 dataset in the official layout (see hiera_video/tasks/ava/synthetic.py).

    hiera-video make-synthetic-ava --out data/ava_syn
    hiera-video make-synthetic-ava --out data/ava_syn --videos-train 8 --videos-val 4 --seconds 10 --seed 0

Videos whose frames are complete are kept, so an interrupted run resumes; the annotation files and
frame lists are rewritten. The summary is printed as one JSON line.
"""

import argparse
import json
import sys
from pathlib import Path

from ..cli import command
from ..tasks.ava.synthetic import make_ava_dataset


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="dataset folder (created if missing)")
    p.add_argument("--videos-train", type=int, default=8, help="number of training videos")
    p.add_argument("--videos-val", type=int, default=4, help="number of validation videos")
    p.add_argument("--seconds", type=int, default=10, help="length of each video (>= 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=160, help="frame width in pixels")
    p.add_argument("--height", type=int, default=120, help="frame height in pixels")
    p.add_argument("--workers", type=int, help="processes (default: the CPUs available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    summary = make_ava_dataset(args.out, args.videos_train, args.videos_val, seconds=args.seconds, seed=args.seed,
                           width=args.width, height=args.height, workers=args.workers, progress=not args.no_progress)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
