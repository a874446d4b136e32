"""Private memory of DataLoader workers reading a Kinetics-sized list, with the entries in flat arrays
(what `read_list` returns) or as a Python list of objects (as before), as JSON.

    hiera-video benchmark-lists --videos 240000 --workers 4
    hiera-video benchmark-lists --videos 240000 --workers 4 --storage objects     # the old way

Each worker reads the path and label of its share of one shuffled epoch (no decoding) and reports its
private memory (Private_Clean + Private_Dirty, /proc/self/smaps_rollup) at its first item and at its
last: the pages it has copied from the main process. Linux only.
"""

import argparse
import json
import sys

from ..cli import command, non_negative_int, positive_int
from ..data.bench import list_memory


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--videos", type=positive_int, default=240_000, help="lines of the list (default 240000)")
    p.add_argument("--workers", type=positive_int, default=4, help="DataLoader workers (default 4)")
    p.add_argument("--storage", nargs="+", choices=["flat", "objects"], default=["flat", "objects"])
    p.add_argument("--seed", type=non_negative_int, default=0)


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    results = []
    for storage in args.storage:
        r = list_memory(args.videos, args.workers, storage, seed=args.seed)
        print(f"{storage}: workers grew by {r['growth_mb_total']} MB in all "
              f"({', '.join(str(w['growth_mb']) for w in r['per_worker'])} MB each)", file=sys.stderr)
        results.append(r)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
