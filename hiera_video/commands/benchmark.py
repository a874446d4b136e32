"""Clips per second of a Hiera model, measured like the paper (see hiera_video/benchmark.py).

    hiera-video benchmark --model hiera_large_16x224 --device cuda --dtype fp16 --batch-sizes 1,8,16,32,64
    hiera-video benchmark --model hiera_base_16x224 --device cpu --dtype fp32 --batch-sizes 1 --compare-official
"""

import argparse
import json
import sys
from pathlib import Path

from ..benchmark import parse_batch_sizes, run_benchmark
from ..cli import command


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a registered name (hiera_video.list_models())")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    p.add_argument("--batch-sizes", default="1,8,16,32,64", help="comma-separated")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile our model (default: on for cuda, off for cpu)")
    p.add_argument("--train", action="store_true", help="time forward + backward + AdamW step instead")
    p.add_argument("--compare-official", action="store_true",
                   help="also time the official implementation (package `hiera`), interleaved, same weights")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10, help="at least this many timed steps per batch size")
    p.add_argument("--seconds", type=float, default=2.0, help="and at least this long")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds with --compare-official")
    p.add_argument("--peak-tflops", type=float, help="device peak for MFU (known GPUs are looked up)")
    p.add_argument("--json", type=Path, help="write the results here")


# RuntimeError: no CUDA device, no official package for --compare-official, out of memory at a batch size
@command(__doc__, arguments, usage_errors=(RuntimeError,))
def main(args: argparse.Namespace) -> int:
    compile_ = args.device == "cuda" if args.compile is None else args.compile
    report = run_benchmark(args.model, args.device, args.dtype, parse_batch_sizes(args.batch_sizes), compile=compile_,
                           train=args.train, compare_official=args.compare_official, warmup=args.warmup,
                           iters=args.iters, seconds=args.seconds, rounds=args.rounds, peak_tflops=args.peak_tflops)
    print(report.table())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(), indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
