"""Build Kinetics data lists (`{split}.csv` of `path label` lines + `classes.txt`) in --out.

From a folder laid out split/class_name/*.mp4:
    hiera-video prepare-kinetics --videos /data/k400 --dataset k400 --out lists/k400
From the official annotation CSVs and a folder of clips named {youtube_id}_{start:06d}_{end:06d}.mp4:
    hiera-video prepare-kinetics --csv k400/train.csv k400/validate.csv --clips /data/k400_clips \\
        --dataset k400 --out lists/k400
Videos named by the annotations but absent on disk are counted and listed in missing_{split}.txt.
"""

import argparse
import sys
from pathlib import Path

from ..cli import ArgumentsError, command
from ..data.lists import read_classes
from ..data.prepare import index_videos, kinetics_from_csv, kinetics_from_folders, write_lists

CLASS_FILES = {"k400": "kinetics400", "k600": "kinetics600", "k700": "kinetics700"}


def arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--videos", type=Path, help="folder laid out split/class_name/*.mp4")
    src.add_argument("--csv", type=Path, nargs="+", help="official annotation CSVs (one list per CSV)")
    p.add_argument("--clips", type=Path, help="with --csv: folder holding the clips (searched recursively)")
    p.add_argument("--dataset", choices=sorted(CLASS_FILES), default="k400",
                   help="class order of the official checkpoints (data_lists/kinetics*.txt)")
    p.add_argument("--classes", type=Path, help="another class file instead of --dataset's")
    p.add_argument("--out", type=Path, required=True)


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    classes = read_classes(args.classes or CLASS_FILES[args.dataset])  # a shipped list by name
    if args.videos:
        splits = kinetics_from_folders(args.videos, classes)
    else:
        if not args.clips:
            raise ArgumentsError("--csv needs --clips")
        index = index_videos(args.clips)
        splits = [kinetics_from_csv(c, args.clips, classes, index) for c in args.csv]
    for line in write_lists(args.out, classes, splits):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
