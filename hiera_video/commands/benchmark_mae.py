"""Does sparsity pay? The MAE encoder's cost per clip with masked units deleted (ratio 0.9) and with
none deleted (ratio 0): GFLOPs, forward clips/s and forward + backward clips/s.

    hiera-video benchmark-mae --model mae_hiera_base_16x224 --device cpu --batch-size 2
    hiera-video benchmark-mae --model mae_hiera_large_16x224 --device cuda --dtype bf16 --batch-size 16
"""

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

from ..benchmark import DTYPES, device_name, run_mae_sparsity
from ..cli import command


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="mae_hiera_base_16x224", help="an mae_* model")
    p.add_argument("--ratios", default="0,0.9", help="comma-separated mask ratios")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="fp32", choices=list(DTYPES))
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--no-train", action="store_true", help="forward only")
    p.add_argument("--iters", type=int, default=3, help="at least this many timed steps")
    p.add_argument("--seconds", type=float, default=5.0, help="and at least this long")
    p.add_argument("--json", type=Path, help="write the results here")


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    ratios = [float(r) for r in args.ratios.split(",")]
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA device is visible")
    rows = run_mae_sparsity(args.model, ratios, args.device, args.dtype, args.batch_size, not args.no_train,
                            iters=args.iters, seconds=args.seconds)
    dense = next((r for r in rows if r["mask_ratio"] == 0), None)
    for r in rows:
        if dense is not None and r is not dense:
            gain = ", ".join(f"{k.replace('_clips_per_s', '')} x{r[k] / dense[k]:.1f} faster"
                             for k in ("forward_clips_per_s", "train_clips_per_s") if k in r)
            fewer = dense["encoder_gflops_per_clip"] / r["encoder_gflops_per_clip"]
            print(f"mask ratio {r['mask_ratio']}: {fewer:.1f}x fewer encoder FLOPs, {gain}")
    if args.json:
        info = {"model": args.model, "device": device_name(torch.device(args.device)), "dtype": args.dtype,
                "batch_size": args.batch_size, "torch": torch.__version__, "machine": platform.platform(),
                "results": rows}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(info, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
