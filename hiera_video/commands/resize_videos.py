"""Re-encode every video under --src to a short side of --short-side pixels (H.264 mp4, keyframe
every --gop frames, audio dropped) into the same layout under --dst. Resumable: videos already in
--dst are skipped. Failures are listed (and written to --dst/resize_failures.tsv); exit code 1 if any.

    hiera-video resize-videos --src /data/k400 --dst /data/k400_320 --short-side 320 --workers 32
"""

import argparse
import sys
from pathlib import Path

from ..cli import command
from ..data.check import default_workers
from ..data.resize import resize_tree


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", type=Path, required=True)
    p.add_argument("--dst", type=Path, required=True)
    p.add_argument("--short-side", type=int, default=320)
    p.add_argument("--gop", type=int, default=16, help="frames between keyframes (short: fast seeking)")
    p.add_argument("--workers", type=int, default=default_workers())


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    if not args.src.is_dir():
        raise ValueError(f"--src {args.src} is not a folder")
    summary = resize_tree(args.src, args.dst, args.short_side, args.gop, args.workers,
                          progress=sys.stderr.isatty())
    print(f"resized {summary.done}, already done {summary.skipped}, failed {len(summary.failed)}")
    if summary.failed:
        report = args.dst / "resize_failures.tsv"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("".join(f"{src}\t{why}\n" for src, why in summary.failed))
        for src, why in summary.failed[:10]:
            print(f"  {src}: {why}", file=sys.stderr)
        print(f"all failures: {report}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
