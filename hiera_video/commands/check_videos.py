"""Decode every entry of a data list and report the bad ones (missing, empty, non-video, truncated,
undecodable): one `path<TAB>reason` line each, to stdout or --out. Exits 1 if any entry is bad, 0 if
all are good, 2 if the list itself cannot be read (missing, or not UTF-8 text: the message names the
file and line).

Readable but odd entries are warned about on stderr (`warning: path: what`, and as `path<TAB>warning`
lines in --warnings FILE) without failing the check: rotation metadata, variable frame rate, a single
still image under a video's name, files only PyAV can read.

    hiera-video check-videos data/k400/val.csv --workers 16 --out bad_val.tsv --warnings odd_val.tsv \\
        --clean-list val_readable.csv

With --out, results are kept in OUT.progress as they come: the same command after an interruption (even
kill -9) continues where it stopped, and the report is the same as an uninterrupted run's. Each video
has --timeout seconds (a stalled mount or a looping decoder is reported, not waited for).
"""

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from ..cli import command
from ..data.check import CheckJournal, default_workers, inspect_entries
from ..data.guard import DEFAULT_SECONDS
from ..data.lists import read_list
from ..fileio import atomic_write


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
    p.add_argument("--clean-list", type=Path, help="also write the list's lines of the readable videos here")
    p.add_argument("--warnings", type=Path, help="also write the warnings here, one `path<TAB>warning` line each")
    p.add_argument("--progress", type=Path,
                   help="where results are kept as they come, so that an interrupted check (even kill -9) "
                        "continues where it stopped (default: OUT.progress with --out, else none)")


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    entries = read_list(args.list, args.root, labelled=False)
    journal_path = args.progress or (args.out.with_name(args.out.name + ".progress") if args.out else None)
    journal = None
    if journal_path is not None:
        stat = args.list.stat()
        header = (f"hiera-video check-videos 1\t{args.list.resolve()}\t{stat.st_size}\t{stat.st_mtime_ns}\t"
                  f"root={args.root}\tbackend={args.backend}\tquick={args.quick}\ttimeout={args.timeout:g}")
        journal = CheckJournal(journal_path, header)
        if journal.results:
            print(f"continuing: {len(journal.results)} of {len(entries)} videos already checked ({journal_path})",
                  file=sys.stderr)
    done = journal.results if journal is not None else []
    todo = entries[len(done):]
    results = inspect_entries(todo, args.backend, full=not args.quick, workers=args.workers, timeout=args.timeout)
    checked = list(done)
    for entry, reason, warnings in tqdm(results, total=len(todo), desc="checking videos", unit="video",
                                        disable=not sys.stderr.isatty()):
        if journal is not None:
            journal.add(reason, warnings)
        checked.append((reason, warnings))
        for warning in warnings:
            tqdm.write(f"warning: {entry.path}: {warning}", file=sys.stderr)
    bad = [f"{e.path}\t{reason}" for e, (reason, _) in zip(entries, checked) if reason is not None]
    warned = [f"{e.path}\t{w}" for e, (_, ws) in zip(entries, checked) for w in ws]
    text = "".join(line + "\n" for line in bad)
    if args.out:
        atomic_write(args.out, text)
    else:
        sys.stdout.write(text)
    if args.warnings:
        atomic_write(args.warnings, "".join(line + "\n" for line in warned))
    if args.clean_list:
        lines = args.list.read_text(encoding="utf-8").splitlines()
        atomic_write(args.clean_list, "".join(lines[e.line - 1] + "\n" for e, (reason, _) in zip(entries, checked)
                                              if reason is None))
    if journal is not None:
        journal.close(remove=True)  # the report is complete: nothing to continue
    num_warned = len({line.split("\t")[0] for line in warned})
    print(f"{len(bad)} bad of {len(entries)} videos" + (f" (listed in {args.out})" if args.out and bad else "")
          + (f"; {num_warned} with warnings" if num_warned else "")
          + (f"; {len(entries) - len(bad)} readable in {args.clean_list}" if args.clean_list else ""), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
