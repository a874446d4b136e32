"""Exporting a classifier for inference outside this package: ONNX and `torch.export` programs.

`export_model(model, path, format="onnx" | "torch-export")` writes the file atomically, with a dynamic
batch axis and logits (never softmax) as output. With `check=True` (the default) the file is run at other
batch sizes and compared with the eager model; a difference above `tolerance` (relative to the logits'
scale) raises `ExportError` and keeps the file.
Details: docs/models.md (hiera_video/export.py).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import fileio
from .models.mae import MaskedAutoencoderHiera

logger = logging.getLogger("hiera_video")

FORMATS = ("onnx", "torch-export")
_PROTOBUF_LIMIT = 2_000_000_000  # bytes an ONNX file can hold inline (with room for the graph)


class ExportError(RuntimeError):
    """An export that failed, or whose output differs from the eager model's; the message says which."""


@dataclass
class ExportReport:
    path: Path
    format: str
    input_shape: list[int]  # the example's, [B, C, T, H, W]; B is dynamic in the file
    seconds: float
    max_abs_error: dict[int, float] = field(default_factory=dict)  # batch size -> max |exported - eager|
    tolerance: float | None = None  # the absolute bound the errors were held to
    checked_with: str | None = None  # "onnxruntime", "torch.export", or None when not checked

    def summary(self) -> str:
        if not self.max_abs_error:
            checked = "not checked"
        else:
            errors = ", ".join(f"batch {b}: {e:.2e}" for b, e in self.max_abs_error.items())
            checked = f"max abs error vs eager ({self.checked_with}) {errors} (tolerance {self.tolerance:.2e})"
        return f"{self.path} ({self.format}, input {self.input_shape}, {self.seconds:.1f} s): {checked}"


def _input_shape(model: torch.nn.Module, batch_size: int) -> list[int]:
    config = getattr(model, "config", None)
    if not isinstance(config, dict) or "input_size" not in config:
        raise ExportError(f"export_model takes a hiera_video classifier (with .config), got {type(model).__name__}")
    return [batch_size, config.get("in_chans", 3), *config["input_size"]]


def _check_exportable(model: torch.nn.Module) -> None:
    name = getattr(model, "name", None) or type(model).__name__
    if isinstance(model, MaskedAutoencoderHiera):
        raise ExportError(f"{name}: an MAE (random masks, a loss) is not exported; export a classifier, or "
                          f"the MAE's encoder: create_model(pretrained=..., num_classes=0)")
    if "ava_num_classes" in model.config:
        raise ExportError(f"{name}: AVA detectors take boxes as well as clips and are not exported yet")


def export_model(model: torch.nn.Module, path: str | os.PathLike, format: str = "onnx", batch_size: int = 2,
                 opset: int | None = None, dynamo: bool = True, check: bool = True, tolerance: float = 1e-4,
                 check_batch_sizes: tuple[int, ...] | None = None) -> ExportReport:
    """Export `model` (a classifier; `num_classes=0` exports pooled features) to `path`. Returns an
    `ExportReport` (see docs/models.md).

    format: "onnx" or "torch-export".
    batch_size: the example's batch size (the batch axis stays dynamic; 2 or more, since torch.export
        specialises sizes 0 and 1).
    opset: ONNX opset; None takes the exporter's default.
    dynamo: ONNX only; True: the torch.export-based exporter, False: the TorchScript-based one.
    check: run the file at `check_batch_sizes` (default 1 and batch_size + 1) and compare with eager.
    tolerance: largest accepted |exported - eager|, relative to max(1, max |eager|).
    """
    if format not in FORMATS:
        raise ValueError(f"format={format!r}: choose one of {FORMATS}")
    if batch_size < 2:
        raise ValueError(f"batch_size={batch_size}: use 2 or more (torch.export specialises a batch of 1, "
                         f"which would fix the batch axis)")
    _check_exportable(model)
    path = Path(path)
    shape = _input_shape(model, batch_size)
    was_training = model.training
    model.eval()  # drop path and dropout off; the exported graph is for inference
    try:
        device = next(model.parameters()).device
        example = torch.randn(shape, device=device)
        batch = torch.export.Dim("batch", min=1, max=4096)
        start = time.perf_counter()
        if format == "onnx":
            _export_onnx(model, example, path, batch, opset, dynamo)
        else:
            with torch.no_grad():
                program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
            with fileio.atomic_path(path, durable=True) as tmp:
                torch.export.save(program, str(tmp))
        report = ExportReport(path, format, shape, time.perf_counter() - start)
        logger.info("exported %s to %s in %.1f s", getattr(model, "name", "model"), path, report.seconds)
        if check:
            _check(model, report, check_batch_sizes or (1, batch_size + 1), tolerance, device)
    finally:
        model.train(was_training)
    return report


def _export_onnx(model, example, path: Path, batch, opset: int | None, dynamo: bool) -> None:
    """torch.onnx.export into a private folder beside `path`, then move the results into place: a large
    model's weights go to an external-data file next to the graph, which refers to it by name."""
    tmp_dir = path.parent / f".{path.name}.export-{os.getpid()}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    # One self-contained file unless the weights pass protobuf's 2 GB limit (Hiera-H in fp32 does).
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    kwargs = dict(input_names=["input"], output_names=["logits"], dynamo=dynamo,
                  external_data=weight_bytes > _PROTOBUF_LIMIT)
    if opset is not None:
        kwargs["opset_version"] = opset
    if dynamo:
        kwargs["dynamic_shapes"] = ({0: batch},)
    else:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns about our input-shape check (a Python bool); the shape is fixed by design.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            if not dynamo:  # asked for explicitly: torch's notices that this exporter is deprecated add nothing
                warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(model, (example,), str(tmp_dir / path.name), **kwargs)
        written = sorted(tmp_dir.iterdir())
        if not (tmp_dir / path.name).is_file():
            raise ExportError(f"torch.onnx.export wrote no {path.name} (wrote {[p.name for p in written]})")
        for p in written:  # external data first: the graph appears last, with its weights in place
            if p.name != path.name:
                fileio.fsync_path(p)
                os.replace(p, path.parent / p.name)
        fileio.fsync_path(tmp_dir / path.name)
        os.replace(tmp_dir / path.name, path)
    except Exception as e:
        if fileio.is_disk_full(e):
            raise fileio.disk_full_error(path, None, e) from e
        if isinstance(e, ExportError):
            raise
        if isinstance(e, ImportError):
            raise ExportError(f"ONNX export needs onnx (and onnxscript for dynamo=True): pip install "
                              f"'hiera-video[export]' ({e})") from e
        raise ExportError(f"ONNX export of {getattr(model, 'name', 'model')} to {path} failed "
                          f"(dynamo={dynamo}, opset={opset}): {type(e).__name__}: {e}") from e
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _runner(report: ExportReport):
    """A function batch -> exported outputs, or None when nothing here can run the file."""
    if report.format == "torch-export":
        program = torch.export.load(str(report.path)).module()
        report.checked_with = "torch.export"
        return lambda x: program(x)
    try:
        import onnxruntime
    except ImportError:
        logger.warning("%s: not checked (onnxruntime is not installed: pip install onnxruntime)", report.path)
        return None
    session = onnxruntime.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    report.checked_with = "onnxruntime"
    return lambda x: torch.from_numpy(session.run(["logits"], {"input": x.cpu().numpy()})[0])


def _check(model, report: ExportReport, batch_sizes, tolerance: float, device) -> None:
    run = _runner(report)
    if run is None:
        return
    bound = 0.0
    for n in batch_sizes:
        x = torch.randn([n, *report.input_shape[1:]], device=device)
        with torch.no_grad():
            expected = model(x).float().cpu()
            try:
                got = run(x).float().cpu()
            except Exception as e:  # onnxruntime's and torch.export's guards raise their own types
                raise ExportError(f"{report.path}: batch {n}: the exported model does not run "
                                  f"({report.checked_with}: {type(e).__name__}: {str(e)[:500]})") from e
        if got.shape != expected.shape:
            raise ExportError(f"{report.path}: batch {n}: the exported model gives shape {list(got.shape)}, "
                              f"eager {list(expected.shape)} (is the batch axis dynamic?)")
        error = (got - expected).abs().max().item()
        report.max_abs_error[n] = error
        bound = tolerance * max(1.0, expected.abs().max().item())
        report.tolerance = max(report.tolerance or 0.0, bound)
        if not math.isfinite(error) or error > bound:
            raise ExportError(f"{report.path}: batch {n}: max abs error {error:.3e} against the eager model "
                              f"is above the tolerance {bound:.3e} ({report.checked_with})")
    logger.info("%s", report.summary())
