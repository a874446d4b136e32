"""Decode every entry of a data list and report the bad ones (missing, empty, non-video, truncated,
undecodable): one `path<TAB>reason` line each, to stdout or --out. Exits 1 if any entry is bad, 0 if
all are good, 2 if the list itself cannot be read (missing, or not UTF-8 text: the message names the
file and line).

Readable but odd entries are warned about on stderr (`warning: path: what`, and as `path<TAB>warning`
lines in --warnings FILE) without failing the check: rotation metadata, variable frame rate, a single
still image under a video's name, files only PyAV can read.

    hiera-video check-videos data/k400/val.csv --workers 16 --out bad_val.tsv --warnings odd_val.tsv
"""

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from ..cli import command
from ..data.check import default_workers, inspect_entries
from ..data.guard import DEFAULT_SECONDS
from ..data.lists import read_list


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("list", type=Path, help="data list: 'path label' lines (labels optional here)")
    p.add_argument("--root", type=Path, help="folder relative paths start from (default: the list's folder)")
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--backend", default="auto", choices=["auto", "decord", "pyav", "torchcodec"],
                   help="the backend training will use (default: auto)")
    p.add_argument("--quick", action="store_true",
                   help="read only the first, middle and last frames (misses corruption in between)")
    p.add_argument("--timeout", type=float, default=DEFAULT_SECONDS,
                   help=f"seconds one video may take before it is reported as bad (0: no limit; default "
                        f"{DEFAULT_SECONDS:g}): a stalled file system or a looping decoder cannot stop the check")
    p.add_argument("--out", type=Path, help="write the bad entries here instead of stdout")
    p.add_argument("--warnings", type=Path, help="also write the warnings here, one `path<TAB>warning` line each")


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    entries = read_list(args.list, args.root, labelled=False)
    bad, warned = [], []
    results = inspect_entries(entries, args.backend, full=not args.quick, workers=args.workers, timeout=args.timeout)
    for entry, reason, warnings in tqdm(results, total=len(entries), desc="checking videos", unit="video",
                                        disable=not sys.stderr.isatty()):
        if reason is not None:
            bad.append(f"{entry.path}\t{reason}")
        for warning in warnings:
            warned.append(f"{entry.path}\t{warning}")
            tqdm.write(f"warning: {entry.path}: {warning}", file=sys.stderr)
    text = "".join(line + "\n" for line in bad)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    if args.warnings:
        args.warnings.parent.mkdir(parents=True, exist_ok=True)
        args.warnings.write_text("".join(line + "\n" for line in warned))
    num_warned = len({line.split("\t")[0] for line in warned})
    print(f"{len(bad)} bad of {len(entries)} videos" + (f" (listed in {args.out})" if args.out and bad else "")
          + (f"; {num_warned} with warnings" if num_warned else ""), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
