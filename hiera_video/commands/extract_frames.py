"""Frames folders from the videos of a list (mmaction2's rawframes layout), and the list that names them.

    hiera-video extract-frames data/k400/val.csv --root data/k400 --out data/k400_frames --workers 16
    hiera-video extract-frames data/ssv2/train.csv --out data/ssv2_frames --format jpg --quality 90

Writes OUT/<video path without suffix>/img_00001.jpg ... and frames.json (frame rate, count, source), and
OUT/<list name>: `folder total_frames label` lines, which any list key takes (data.train_list, ...,
with data.root=OUT). A folder is complete once its frames.json exists, so an interrupted run continues
where it stopped. `--format png` keeps the decoded pixels exactly (the frames then give the same clips
as the video); JPEG is smaller.
"""

import argparse
import sys
from pathlib import Path

from ..cli import command, non_negative_int, output_folder
from ..data.check import default_workers
from ..data.frames import extract_frames
from ..data.lists import read_list
from ..fileio import atomic_write


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("list", type=Path, help="data list of videos: `path label` lines")
    p.add_argument("--out", type=output_folder, required=True, help="folder for the frames and the new list")
    p.add_argument("--root", type=Path, help="folder relative paths start from (default: the list's folder)")
    p.add_argument("--format", default="jpg", choices=["jpg", "png"])
    p.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    p.add_argument("--workers", type=non_negative_int, default=default_workers())


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    entries = read_list(args.list, args.root)
    root = args.root if args.root is not None else args.list.parent
    rows = extract_frames(entries, root, args.out, args.format, args.quality, args.workers or 1,
                          progress=sys.stderr.isatty())
    out_list = args.out / args.list.name
    atomic_write(out_list, "".join(f"{folder} {n} {label}\n" for folder, n, label in rows))
    print(f"{len(rows)} videos -> {sum(n for _, n, _ in rows)} frames in {args.out}; list: {out_list}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
