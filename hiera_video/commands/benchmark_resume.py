"""Peak memory per process of resuming a sharded (FSDP2) training checkpoint on the CPU: the main
process reading the weight, optimizer and EMA files and broadcasting the shards (what training does),
or every process reading them (as before), as a Markdown table and JSON.

    hiera-video benchmark-resume --model hiera_large_16x224 --out /tmp/resume_l
    hiera-video benchmark-resume --model hiera_huge_16x224 --out /tmp/resume_h --write-processes 1 --no-ema

It launches `accelerate launch --multi_gpu --num_processes N` (gloo, CPU) once to write a checkpoint
into --out (kept, and reused by the next run with the same --out) and once per path to load it into a
freshly sharded model. Each process reports its resident memory before load_checkpoint and its peak
during it (VmHWM, reset just before). Writing needs memory too: every sharded CPU process gathers
the full state (--write-processes 1 writes it unsharded, with the least). Linux only.
"""

import argparse
import json
import sys
from pathlib import Path

from ..cli import command, output_folder, positive_int
from ..engine import resume_memory


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="hiera_large_16x224", help="a registered name (default hiera_large_16x224)")
    p.add_argument("--num-classes", type=positive_int, default=400)
    p.add_argument("--processes", type=positive_int, default=2, help="processes of each load (default 2)")
    p.add_argument("--write-processes", type=positive_int,
                   help="processes writing the checkpoint (default --processes; 1 needs the least memory)")
    p.add_argument("--out", type=output_folder, required=True, help="folder for the checkpoint and the records")
    p.add_argument("--paths", nargs="+", choices=["broadcast", "every-process"], default=["broadcast", "every-process"])
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True, help="with an EMA (default on)")
    p.add_argument("--json", type=Path, help="write the records here")
    # What each launched process does (set by the command itself).
    p.add_argument("--role", choices=["write", "load"], help=argparse.SUPPRESS)
    p.add_argument("--path", choices=["broadcast", "every-process"], help=argparse.SUPPRESS)


# RuntimeError: a launch failed (its output is above), no /proc (not Linux)
@command(__doc__, arguments, usage_errors=(RuntimeError,))
def main(args: argparse.Namespace) -> int:
    if args.role == "write":
        resume_memory.write(args.model, args.num_classes, args.ema, args.out)
        return 0
    if args.role == "load":
        resume_memory.load(args.model, args.num_classes, args.ema, args.out, args.path)
        return 0
    records = resume_memory.measure(args.model, args.num_classes, args.processes, args.out, args.paths, args.ema,
                                    args.write_processes)
    print(resume_memory.table(records))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(records, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
