"""Learning curves of a training run: the figure behind `output_dir/curves.png`, drawn with matplotlib
(the optional `viz` extra) from the run's metrics.jsonl rows, one per epoch.

Panels: loss (train, and validation when the task reports one: MAE), learning rate at the end of each
epoch, and the validation figure that picks model_best.pt when it is not a loss (top-1 / top-5 for
classification, frame-mAP for AVA). The training loop redraws the file after every epoch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from .viz import save_figure

# (metrics.jsonl key, legend) of the validation panel, shown as percentages; the first found decides it.
_METRIC_PANELS = ((("val_top1", "top-1"), ("val_top5", "top-5")), (("val_map", "frame-mAP"),))


def matplotlib_missing() -> str | None:
    """Why curves cannot be drawn here (matplotlib does not import), or None when they can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        return f"matplotlib is not installed ({e}); pip install 'hiera-video[viz]' for curves.png"
    return None


def _series(rows: Sequence[dict], key: str, factor: float = 1.0) -> list[float] | None:
    """Values of `key` per row (NaN where missing: matplotlib leaves a gap); None if no row has one."""
    values = [float(r[key]) * factor if isinstance(r.get(key), (int, float)) else math.nan for r in rows]
    return values if any(math.isfinite(v) for v in values) else None


def curves_figure(rows: Sequence[dict]):
    """The learning-curve Figure of metrics.jsonl rows (read_metrics); see the module docstring."""
    # Figure without pyplot: no GUI backend, no global figure list growing with every epoch.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if not rows:
        raise ValueError("no metrics rows to draw (metrics.jsonl is empty)")
    epochs = [r["epoch"] for r in rows]
    panels: list[tuple[str, str, list[tuple[str, list[float]]]]] = []
    losses = [(label, v) for key, label in (("train_loss", "train"), ("val_loss", "validation"))
              if (v := _series(rows, key)) is not None]
    if losses:
        panels.append(("loss", "loss", losses))
    if (lr := _series(rows, "lr")) is not None:
        panels.append(("learning rate", "lr (end of epoch)", [("lr", lr)]))
    for group in _METRIC_PANELS:
        found = [(label, v) for key, label in group if (v := _series(rows, key, 100.0)) is not None]
        if found:
            panels.append(("validation", "%", found))
            break
    if not panels:
        raise ValueError("the metrics rows hold no train_loss, lr or validation figure to draw")

    fig = Figure(figsize=(4.2 * len(panels), 3.4), layout="constrained")
    for i, (title, ylabel, lines) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for label, values in lines:
            # Markers: a run of one epoch is still a visible point.
            ax.plot(epochs, values, marker="o", markersize=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        else:  # even one line: "train" says which loss it is
            ax.legend()
    return fig


def write_curves(rows: Sequence[dict], path: str | os.PathLike) -> None:
    """curves_figure(rows) as a PNG, written atomically (a reader never sees half a picture)."""
    save_figure(curves_figure(rows), path)
