"""Write the synthetic action dataset (8 classes in time-reversed pairs; see hiera_video/synthetic/actions.py).

    hiera-video make-synthetic --out data/synthetic --train 400 --val 100 --seed 0
    hiera-video make-synthetic --out data/synthetic --train 800 --val 100 --seed 0   # grows it

Videos already in the folder are kept, so an interrupted run resumes and a larger run adds videos.
The summary is printed as one JSON line.
"""

import argparse
import json
import sys
from pathlib import Path

from ..cli import command
from ..synthetic.actions import CLASS_SETS, make_action_dataset


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="dataset folder (created if missing)")
    p.add_argument("--train", type=int, required=True, help="number of training videos")
    p.add_argument("--val", type=int, required=True, help="number of validation videos")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", choices=sorted(CLASS_SETS), default="actions",
                   help="class set: actions (8: moves, grow/shrink, rotations; the demo's), paths (6: "
                        "diagonal moves and orbits) or dynamics (6: crossings that speed up or slow down)")
    p.add_argument("--workers", type=int, help="processes (default: the CPUs available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    summary = make_action_dataset(args.out, args.train, args.val, seed=args.seed, workers=args.workers,
                           progress=not args.no_progress, classes=args.classes)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
