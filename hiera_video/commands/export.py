"""A checkpoint as an ONNX model or a torch.export program, with a dynamic batch dimension, checked
against the eager model on random input (onnxruntime for ONNX, when installed).

    hiera-video export --ckpt runs/k400_l/model_best.pt --format onnx --out hiera_l.onnx
    hiera-video export --ckpt hiera_base_16x224.pth --model hiera_base_16x224 --format torch-export --out b.pt2
    hiera-video export --ckpt model_best.pt --format onnx --no-dynamo --opset 17 --out m.onnx

The input is `[batch, 3, frames, crop, crop]` clips normalised with the model's mean and std
(`model.pretrained_cfg`); the output is the logits (classifiers) or the pooled features (an MAE
checkpoint's encoder). AVA detectors and whole MAEs are refused.
"""

import argparse

from ..cli import ArgumentsError, command, output_path, positive_int
from ..engine.evaluate import load_model
from ..export import ExportError, export_model  # here, not in main: @command names ExportError


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="checkpoint file, HF folder or hub name")
    p.add_argument("--out", type=output_path, required=True, help="file to write (.onnx or .pt2)")
    p.add_argument("--format", choices=["onnx", "torch-export"], help="default: from --out's suffix")
    p.add_argument("--model", help="architecture for checkpoints that do not record it")
    p.add_argument("--batch-size", type=positive_int, default=2, help="batch of the example input (the axis stays dynamic)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    p.add_argument("--dynamo", action=argparse.BooleanOptionalAction, default=True,
                   help="ONNX: the torch.export-based exporter (default) or the TorchScript one (--no-dynamo)")
    p.add_argument("--no-check", action="store_true", help="skip comparing the export with the eager model")


# ImportError: an optional package is missing (its message names it); ExportError: the export failed, or
# differs from the eager model (the file is kept)
@command(__doc__, arguments, usage_errors=(ImportError,), run_errors=(ExportError,))
def main(args: argparse.Namespace) -> int:
    fmt = args.format or {".onnx": "onnx", ".pt2": "torch-export"}.get(args.out.suffix)
    if fmt is None:
        raise ArgumentsError(f"--out {args.out}: give --format, or a .onnx or .pt2 file name")
    if args.out.is_dir():  # found before the export runs, not at its final rename
        raise ArgumentsError(f"--out {args.out} is a folder; give a file name in it")
    if not args.out.parent.is_dir():
        raise ArgumentsError(f"--out {args.out}: the folder {args.out.parent} does not exist")
    model, _ = load_model(args.ckpt, None, args.model, classifier=False)
    report = export_model(model, args.out, format=fmt, batch_size=args.batch_size, opset=args.opset,
                          dynamo=args.dynamo, check=not args.no_check)
    print(report.summary())
    return 0
