"""Throughput benchmark measured the way the Hiera paper reports speed: random clips already on the
device, inference mode, autocast, warm-up, then timed runs between device synchronisations; clips per
second at each batch size and the best. Optionally a training step (forward, backward, AdamW) and the
official implementation timed in the same process, interleaved with ours, on the same weights.
"""

from __future__ import annotations

import contextlib
import gc
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from .models import count_flops, create_model

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Dense fp16/bf16 tensor-core peaks in TFLOP/s (2 FLOPs per multiply-add), for MFU.
PEAK_TFLOPS = {"A100": 312.0, "H100": 989.0, "H200": 989.0, "L40S": 362.0, "A10G": 125.0, "V100": 125.0}


@dataclass
class Result:
    batch_size: int
    clips_per_s: float | None  # None: out of memory
    official_clips_per_s: float | None = None
    peak_mem_mib: float | None = None
    mfu: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.clips_per_s and self.official_clips_per_s:
            return self.clips_per_s / self.official_clips_per_s
        return None


@dataclass
class Report:
    model: str
    device: str
    device_name: str
    torch_version: str
    dtype: str
    mode: str  # "inference" or "train"
    compile: bool
    gflops_per_clip: float
    results: list[Result] = field(default_factory=list)

    @property
    def best(self) -> Result | None:
        done = [r for r in self.results if r.clips_per_s]
        return max(done, key=lambda r: r.clips_per_s) if done else None

    def to_json(self) -> dict:
        out = asdict(self)
        for r, d in zip(self.results, out["results"]):
            d["ratio"] = r.ratio
        out["best"] = None if self.best is None else {**asdict(self.best), "ratio": self.best.ratio}
        return out

    def table(self) -> str:
        head = f"{self.model} | {self.device_name} | {self.dtype} | {self.mode}{' | compiled' if self.compile else ''}"
        rows = [head, f"{'batch':>6} {'clip/s':>10} {'official':>10} {'ratio':>7} {'peak MiB':>9} {'MFU':>6}"]
        for r in self.results:
            def f(v, fmt):
                return format(v, fmt) if v is not None else "-"
            cps = f(r.clips_per_s, ".2f") if r.clips_per_s is not None else "OOM"
            rows.append(f"{r.batch_size:>6} {cps:>10} {f(r.official_clips_per_s, '.2f'):>10} "
                        f"{f(r.ratio, '.2f'):>7} {f(r.peak_mem_mib, '.0f'):>9} "
                        f"{f(None if r.mfu is None else 100 * r.mfu, '.1f'):>6}")
        if self.best:
            rows.append(f"best: {self.best.clips_per_s:.2f} clip/s at batch {self.best.batch_size}")
        return "\n".join(rows)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(step: Callable[[], None], batch: int, device: torch.device, warmup: int, iters: int,
          seconds: float) -> float:
    """Clips per second of `step`, after `warmup` calls; at least `iters` calls and `seconds` seconds."""
    for _ in range(warmup):
        step()
    _sync(device)
    n, start = 0, time.perf_counter()
    while n < iters or time.perf_counter() - start < seconds:
        step()
        n += 1
    _sync(device)
    return n * batch / (time.perf_counter() - start)


def _official_model(model: torch.nn.Module):
    """The official implementation with our model's weights (key names are identical)."""
    try:
        import hiera  # optional: the official package, for the side-by-side figure only
    except ImportError as e:
        raise RuntimeError("--compare-official needs the official package `hiera` (PyPI hiera-transformer "
                           "0.1.4, which imports timm): build shared/oracle/setup-venv.sh and run this "
                           f"tool with that venv's python and PYTHONPATH=. ({e})") from None
    cfg = {k: v for k, v in model.config.items() if k != "layer_norm_eps"}
    official = hiera.Hiera(**cfg)
    official.load_state_dict(model.state_dict())
    return official


def _make_step(model, x, train: bool, dtype: torch.dtype, device: torch.device):
    autocast = (torch.autocast(device.type, dtype=dtype) if dtype != torch.float32
                else contextlib.nullcontext())
    if not train:
        model.eval()

        def step():
            with torch.inference_mode(), autocast:
                model(x)
        return step
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    target = torch.zeros(x.shape[0], dtype=torch.long, device=device)

    def step():
        with autocast:
            out = model(x)
            # The official head returns logits in train mode; ours always does.
            loss = torch.nn.functional.cross_entropy(out.float(), target)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
    return step


def run_benchmark(model_name: str, device: str = "cuda", dtype: str = "fp16", batch_sizes=(1, 8, 16, 32, 64),
                  compile: bool = False, train: bool = False, compare_official: bool = False,
                  warmup: int = 3, iters: int = 10, seconds: float = 2.0, rounds: int = 3,
                  peak_tflops: float | None = None, log: Callable[[str], None] = print, **model_kw) -> Report:
    """Measure clips/s of `model_name` at each batch size (see the module docstring).

    With `compare_official`, each batch size alternates `rounds` timings of ours and of the official
    model, and reports the median of each, so that drifts in clock or load hit both alike.
    """
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda but no CUDA device is visible; use --device cpu")
    if dtype not in DTYPES:
        raise ValueError(f"--dtype {dtype!r}: choose one of {list(DTYPES)}")
    torch_dtype = DTYPES[dtype]
    model = create_model(model_name, **model_kw).to(dev)
    gflops = count_flops(model) / 1e9
    official = _official_model(model).to(dev) if compare_official else None
    ours = torch.compile(model) if compile else model
    report = Report(model_name, dev.type, device_name(dev), torch.__version__, dtype,
                    "train" if train else "inference", compile, round(gflops, 2))
    peak = _peak_tflops(report.device_name, peak_tflops) if dev.type == "cuda" or peak_tflops else None
    if train:
        gflops *= 3  # backward costs about twice the forward
    for batch in batch_sizes:
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        x = torch.randn(batch, 3, *model.input_size, device=dev)
        try:
            step = _make_step(ours, x, train, torch_dtype, dev)
            if official is None:
                rate = _rate(step, batch, dev, warmup, iters, seconds)
                off_rate = None
            else:
                off_step = _make_step(official, x, train, torch_dtype, dev)
                mine, theirs = [], []
                for r in range(rounds):
                    w = warmup if r == 0 else 1
                    mine.append(_rate(step, batch, dev, w, max(1, iters // rounds), seconds / rounds))
                    theirs.append(_rate(off_step, batch, dev, w, max(1, iters // rounds), seconds / rounds))
                rate, off_rate = statistics.median(mine), statistics.median(theirs)
        except torch.cuda.OutOfMemoryError:
            log(f"batch {batch}: out of memory; stopping here")
            report.results.append(Result(batch, None))
            break
        mem = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
        mfu = rate * 2 * gflops / (peak * 1e3) if peak else None
        report.results.append(Result(batch, rate, off_rate, mem, mfu))
        msg = f"batch {batch}: {rate:.2f} clip/s"
        if off_rate:
            msg += f", official {off_rate:.2f} clip/s, ratio {rate / off_rate:.2f}"
        log(msg)
        del x
    return report


def run_mae_sparsity(model_name: str = "mae_hiera_base_16x224", ratios=(0.0, 0.9), device: str = "cpu",
                     dtype: str = "fp32", batch_size: int = 2, train: bool = True, warmup: int = 1, iters: int = 3,
                     seconds: float = 5.0, log: Callable[[str], None] = print) -> list[dict]:
    """What deleting masked units saves: for each mask ratio, the MAE encoder's (sparse encoder +
    multi-scale fusion) GFLOPs per clip, its forward clips/s and, with `train`, its forward +
    backward clips/s. Ratio 0 keeps every unit: the dense encoder, through the same code."""
    dev = torch.device(device)
    model = create_model(model_name).to(dev)
    if not hasattr(model, "forward_encoder"):
        raise ValueError(f"{model_name} is not an MAE model (choose one of the mae_* names)")
    autocast = (torch.autocast(dev.type, dtype=DTYPES[dtype]) if dtype != "fp32" else contextlib.nullcontext())
    x = torch.randn(batch_size, 3, *model.input_size, device=dev)
    rows = []
    for ratio in ratios:
        mask = model.get_random_mask(batch_size, ratio, device=dev, generator=torch.Generator().manual_seed(0))
        gflops = count_flops(model, mask=mask[:1].cpu(), forward="encoder") / 1e9

        def forward():
            with torch.inference_mode(), autocast:
                model.forward_encoder(x, mask)

        def step():
            with autocast:
                loss = model.forward_encoder(x, mask).float().mean()
            loss.backward()
            model.zero_grad(set_to_none=True)

        model.eval()
        row = {"mask_ratio": ratio, "kept_units": int(mask[0].sum()), "units": mask.shape[1],
               "encoder_gflops_per_clip": round(gflops, 4),
               "forward_clips_per_s": _rate(forward, batch_size, dev, warmup, iters, seconds)}
        if train:
            model.train()
            row["train_clips_per_s"] = _rate(step, batch_size, dev, warmup, iters, seconds)
        rows.append(row)
        log(", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    return rows


def parse_batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--batch-sizes {text!r}: expected comma-separated integers, e.g. 1,8,16") from None
    if not sizes or any(s <= 0 for s in sizes):
        raise ValueError(f"--batch-sizes {text!r}: expected positive integers")
    return sizes


__all__ = ["Report", "Result", "run_benchmark", "run_mae_sparsity", "parse_batch_sizes"]
