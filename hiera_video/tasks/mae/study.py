"""The MAE study: does sparse MAE pretraining earn its keep, at a scale two CPU cores can run?

Hiera's premise is that a plain hierarchical transformer learns its spatial biases from sparse MAE
pretraining. This runs that claim in miniature with the shipped recipe (`synthetic_mae_recipe_pretrain`,
`synthetic_mae_recipe_finetune`), through the real commands' code (training loop, data pipeline,
multi-view evaluation, frozen-feature probe), on unlabelled videos plus a few labelled ones per class:
* per seed: MAE pretraining on all unlabelled videos, then finetuning on the labelled ones; the same
  finetuning from scratch; k-NN and linear probes of the MAE encoder and of a random one;
* a mask-ratio sweep (seed 0): the same pretraining and finetuning at other ratios.
Every step writes into its own folder under OUT and is skipped when it is complete, so an interrupted
study resumes (a step whose folder holds a run of another config is an error, never mixed). Results go
to OUT/study.json, the tables to OUT/study.md and the picture to OUT/study.png.
Finetuned models are scored with their last weights: the validation videos pick nothing.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from ...config import Config, load_config
from ...data.lists import read_classes, read_list, write_list
from ...engine.evaluate import evaluate
from ...engine.probe import run_probe, write_random_init
from ...engine.train import read_metrics, train
from ...fileio import atomic_write
from ...synthetic.actions import make_action_dataset
from ...viz import save_figure

logger = logging.getLogger("hiera_video")

PRETRAIN_CFG = "synthetic_mae_recipe_pretrain"
FINETUNE_CFG = "synthetic_mae_recipe_finetune"


@dataclass
class StudyData:
    unlabelled: str  # videos for pretraining (labels, if any, unused)
    labelled: str  # `path label` lines for finetuning and for fitting the probes
    val: str  # `path label` lines that every figure is measured on
    classes: str  # class names, one per line
    num_classes: int


def labelled_subset(list_path: str | Path, per_class: int, out_path: str | Path) -> int:
    """The first `per_class` lines of each class of a labelled list (in file order), written to
    `out_path` with absolute paths. Returns how many; a class with fewer lines is an error."""
    entries = read_list(list_path)
    taken: dict[int, list] = {}
    for e in entries:
        if len(taken.setdefault(e.label, [])) < per_class:
            taken[e.label].append(e)
    short = {c: len(v) for c, v in taken.items() if len(v) < per_class}
    if short:
        raise ValueError(f"{list_path}: classes {sorted(short)} have fewer than {per_class} videos ({short})")
    rows = [(e.path, e.label) for e in sorted((e for v in taken.values() for e in v), key=lambda e: e.line)]
    write_list(out_path, rows)
    return len(rows)


def prepare_data(out: Path, data_dir: Path | None = None, unlabelled: str | None = None, labelled: str | None = None,
                 val: str | None = None, classes: str | None = None, per_class: int = 10,
                 class_set: str = "dynamics", num_unlabelled: int = 600, num_val: int = 240, seed: int = 0,
                 workers: int | None = None) -> StudyData:
    """The study's lists. Given lists are used as they are; a data folder (train.csv, val.csv,
    classes.txt, as `hiera-video make-synthetic` writes) gives train.csv as the unlabelled videos and
    its first `per_class` videos of each class as the labelled ones; with neither, a synthetic set
    (`class_set`) is generated under OUT/data first."""
    if data_dir is None and unlabelled is None:
        data_dir = out / "data"
        summary = make_action_dataset(data_dir, num_unlabelled, num_val, seed=seed, workers=workers, classes=class_set)
        logger.info("synthetic %s set in %s: %d videos written, %d already there", class_set, data_dir,
                    summary["written"], summary["skipped"])
    if data_dir is not None:
        data_dir = Path(data_dir)
        unlabelled = unlabelled or str(data_dir / "train.csv")
        val = val or str(data_dir / "val.csv")
        classes = classes or str(data_dir / "classes.txt")
    missing = [name for name, v in (("val", val), ("classes", classes)) if v is None]
    if missing:
        raise ValueError(f"the study needs --{' and --'.join(missing)} with --unlabelled (or --data FOLDER)")
    if labelled is None:
        labelled = str(out / "labelled.csv")
        n = labelled_subset(unlabelled, per_class, labelled)
        logger.info("labelled videos: the first %d of each class of %s (%d) -> %s", per_class, unlabelled, n, labelled)
    names = read_classes(classes)
    for path in (labelled, val):
        read_list(path, num_classes=len(names))  # labels fit the classes: fail now, not after an hour
    read_list(unlabelled, labelled=False)
    return StudyData(str(unlabelled), str(labelled), str(val), str(classes), len(names))


def _same_run(folder: Path, cfg: Config) -> None:
    """A step folder may only hold a run of this very config (anything else is an error)."""
    saved = folder / "config.yaml"
    if not saved.is_file():
        return
    old = yaml.safe_load(saved.read_text())
    new = cfg.to_dict()
    for d in (old, new):
        d.get("train", {}).pop("resume", None)
    if old != new:
        diff = [f"{s}.{k}: {old.get(s, {}).get(k)!r} -> {v!r}" for s, sec in new.items() if isinstance(sec, dict)
                for k, v in sec.items() if old.get(s, {}).get(k) != v]
        raise ValueError(f"{folder} holds a run of another config ({'; '.join(diff[:4]) or 'top-level keys'}): "
                         f"use another --out, or delete {folder} to run it again")


class Study:
    """The steps of the study and their results (see the module docstring)."""

    def __init__(self, out: Path, data: StudyData, seeds=(0, 1, 2), ratios=(0.5, 0.75, 0.9),
                 pretrain_cfg: str = PRETRAIN_CFG, finetune_cfg: str = FINETUNE_CFG,
                 pretrain_overrides=(), finetune_overrides=(), workers: int = 2):
        self.out, self.data, self.seeds, self.workers = Path(out), data, list(seeds), workers
        self.pretrain_cfg, self.finetune_cfg = pretrain_cfg, finetune_cfg
        self.pretrain_overrides, self.finetune_overrides = list(pretrain_overrides), list(finetune_overrides)
        self.recipe_ratio = self._pretrain_config(0.0, 0, Path("x")).model.mask_ratio
        if self.recipe_ratio is None:
            raise ValueError(f"{pretrain_cfg} sets no model.mask_ratio; the study compares ratios against it")
        self.ratios = sorted(set(ratios) | {self.recipe_ratio})
        self.results_path = self.out / "study.json"
        self.results = json.loads(self.results_path.read_text()) if self.results_path.is_file() else {}
        self.steps = self.results.setdefault("steps", {})

    # ---- configs -------------------------------------------------------------------------------
    def _pretrain_config(self, ratio: float | None, seed: int, folder: Path) -> Config:
        d = self.data
        overrides = [f"data.train_list={d.unlabelled}", "data.val_list=null", f"train.seed={seed}",
                     f"output_dir={folder}", f"data.num_workers={self.workers}", "train.log_with=none",
                     *self.pretrain_overrides]
        if ratio:
            overrides.append(f"model.mask_ratio={ratio}")
        return load_config(self.pretrain_cfg, overrides)

    def _finetune_config(self, seed: int, folder: Path, pretrained: Path | None) -> Config:
        d = self.data
        # No validation during training (it picks nothing: the last weights are scored), which saves
        # a pass over the validation videos per epoch; evaluation reads eval.list.
        overrides = [f"data.train_list={d.labelled}", "data.val_list=null", f"eval.list={d.val}",
                     f"data.classes={d.classes}", f"model.num_classes={d.num_classes}", f"train.seed={seed}",
                     f"model.pretrained={pretrained if pretrained else 'null'}", f"output_dir={folder}",
                     f"data.num_workers={self.workers}", "train.log_with=none", *self.finetune_overrides]
        return load_config(self.finetune_cfg, overrides)

    # ---- steps ---------------------------------------------------------------------------------
    def _step(self, name: str, fn) -> dict:
        """Run a step unless its result is recorded; record it with its time."""
        if name in self.steps:
            return self.steps[name]
        logger.info("study step %s", name)
        start = time.perf_counter()
        result = fn()
        result["seconds"] = round(time.perf_counter() - start, 1)
        self.steps[name] = result
        self._save()
        return result

    def _train(self, cfg: Config) -> dict:
        folder = Path(cfg.output_dir)
        _same_run(folder, cfg)
        cfg.train.resume = True  # continues a step killed half-way; starts an empty folder
        train(cfg)
        rows = read_metrics(folder / "metrics.jsonl")
        return {"folder": str(folder), "epochs": len(rows), "train_loss": rows[-1]["train_loss"] if rows else None}

    def pretrain(self, ratio: float, seed: int) -> Path:
        folder = self.out / "runs" / f"pretrain_r{ratio}_s{seed}"
        self._step(f"pretrain_r{ratio}_s{seed}", lambda: self._train(self._pretrain_config(ratio, seed, folder)))
        return folder / "model_last.pt"

    def finetune(self, seed: int, pretrained: Path | None, name: str) -> dict:
        def run() -> dict:
            cfg = self._finetune_config(seed, self.out / "runs" / name, pretrained)
            result = self._train(cfg)
            ev = evaluate(cfg, str(Path(cfg.output_dir) / "model_last.pt"), Path(cfg.output_dir) / "eval")
            views = f"{cfg.eval.num_temporal_clips}x{cfg.eval.num_spatial_crops}"
            return {**result, "top1": ev["top1"], "top5": ev["top5"], "mean_class_acc": ev["mean_class_acc"],
                    "views": views, "num_videos": ev["num_videos"], "num_unreadable": ev["num_unreadable"]}
        return self._step(name, run)

    def probe(self, ckpt: Path | str, seed: int, name: str) -> dict:
        def run() -> dict:
            folder = self.out / "probes" / name
            cfg = self._finetune_config(seed, folder, None)
            path = ckpt
            if ckpt == "random":
                path = write_random_init(cfg.model.name, folder / "random_init.pt", cfg, seed)
            m = run_probe(cfg, str(path), self.data.val, folder, self.data.labelled, num_workers=self.workers)
            return {k: m[k] for k in ("knn_top1", "nn1_top1", "linear_top1", "num_train", "num_val")}
        return self._step(name, run)

    def run(self) -> dict:
        self.results.update(data=asdict(self.data), seeds=self.seeds, ratios=self.ratios,
                            recipe_ratio=self.recipe_ratio, pretrain_cfg=self.pretrain_cfg,
                            finetune_cfg=self.finetune_cfg, pretrain_overrides=self.pretrain_overrides,
                            finetune_overrides=self.finetune_overrides)
        start = time.perf_counter()
        r = self.recipe_ratio
        for seed in self.seeds:  # the recipe against scratch, seed by seed (usable after the first)
            self.probe("random", seed, f"probe_random_s{seed}")
            mae = self.pretrain(r, seed)
            self.probe(mae, seed, f"probe_mae_r{r}_s{seed}")
            self.finetune(seed, mae, f"finetune_mae_r{r}_s{seed}")
            self.finetune(seed, None, f"finetune_scratch_s{seed}")
            self.report()
        seed = self.seeds[0]
        for ratio in self.ratios:  # the mask-ratio sweep, first seed
            if ratio != r:
                mae = self.pretrain(ratio, seed)
                self.probe(mae, seed, f"probe_mae_r{ratio}_s{seed}")
                self.finetune(seed, mae, f"finetune_mae_r{ratio}_s{seed}")
                self.report()
        self.results["seconds_this_run"] = round(time.perf_counter() - start, 1)
        self.results["date"] = datetime.datetime.now().isoformat(timespec="seconds")
        self._save()
        self.report()
        return self.results

    def _save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write(self.results_path, json.dumps(self.results, indent=2) + "\n")

    # ---- report --------------------------------------------------------------------------------
    def summary(self) -> dict:
        """Per-seed figures and their mean and standard deviation, and the sweep."""
        s, r = self.steps, self.recipe_ratio

        def series(fmt: str, key: str) -> list[float]:
            return [s[fmt.format(seed=x)][key] for x in self.seeds if fmt.format(seed=x) in s]
        rows = {
            "scratch_top1": series("finetune_scratch_s{seed}", "top1"),
            "mae_top1": series(f"finetune_mae_r{r}_s{{seed}}", "top1"),
            "random_knn": series("probe_random_s{seed}", "knn_top1"),
            "mae_knn": series(f"probe_mae_r{r}_s{{seed}}", "knn_top1"),
            "random_linear": series("probe_random_s{seed}", "linear_top1"),
            "mae_linear": series(f"probe_mae_r{r}_s{{seed}}", "linear_top1"),
        }
        stats = {k: {"values": v, "mean": _mean(v), "std": _std(v)} for k, v in rows.items()}
        seed = self.seeds[0]
        sweep = []
        for ratio in self.ratios:
            ft, pr = s.get(f"finetune_mae_r{ratio}_s{seed}"), s.get(f"probe_mae_r{ratio}_s{seed}")
            pt = s.get(f"pretrain_r{ratio}_s{seed}")
            if ft or pr:
                sweep.append({"mask_ratio": ratio, "top1": ft and ft["top1"], "knn_top1": pr and pr["knn_top1"],
                              "linear_top1": pr and pr["linear_top1"], "pretrain_loss": pt and pt["train_loss"]})
        return {"stats": stats, "sweep": sweep, "scratch_seed0": s.get(f"finetune_scratch_s{seed}")}

    def report(self) -> None:
        """OUT/study.md (tables) and OUT/study.png (picture) from the results so far."""
        summ = self.summary()
        atomic_write(self.out / "study.md", markdown(summ, self.results, self.seeds))
        try:
            save_figure(figure(summ, self.results), self.out / "study.png")
        except ImportError as e:  # matplotlib is optional (the viz extra)
            logger.info("study.png not drawn: %s", e)


def _mean(v: list[float]) -> float | None:
    return sum(v) / len(v) if v else None


def _std(v: list[float]) -> float | None:
    if len(v) < 2:
        return None
    m = _mean(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def markdown(summ: dict, results: dict, seeds: list[int]) -> str:
    st, r = summ["stats"], results.get("recipe_ratio")
    lines = [f"# MAE study ({results.get('date', 'in progress')})", "",
             f"Data: {results['data']['num_classes']} classes; unlabelled `{results['data']['unlabelled']}`, "
             f"labelled `{results['data']['labelled']}`, validation `{results['data']['val']}`. Configs "
             f"`{results['pretrain_cfg']}` and `{results['finetune_cfg']}`"
             + (f", overrides {results['pretrain_overrides']} / {results['finetune_overrides']}"
                if results.get("pretrain_overrides") or results.get("finetune_overrides") else "") + ".",
             "", "Top-1 accuracy (%) on the validation videos; finetuned models with their last weights and "
             "multi-view testing, probes on frozen embeddings fitted on the labelled videos.", "",
             "| | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std |",
             "| --- | " + " | ".join("---:" for _ in seeds) + " | ---: | ---: |"]
    names = [("scratch_top1", "finetuned from scratch"), ("mae_top1", f"MAE (mask {r}), then finetuned"),
             ("random_knn", "k-NN, random encoder"), ("mae_knn", "k-NN, MAE encoder"),
             ("random_linear", "linear probe, random encoder"), ("mae_linear", "linear probe, MAE encoder")]
    for key, label in names:
        v = st[key]
        cells = [_pct(v["values"][i]) if i < len(v["values"]) else "" for i in range(len(seeds))]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_pct(v['mean'])} | {_pct(v['std'])} |")
    for a, b, label in (("mae_top1", "scratch_top1", "finetuning: MAE - scratch"),
                        ("mae_knn", "random_knn", "k-NN: MAE - random")):
        if st[a]["mean"] is not None and st[b]["mean"] is not None:
            lines.append(f"| **{label}** | " + " | ".join("" for _ in seeds)
                         + f" | **{100 * (st[a]['mean'] - st[b]['mean']):+.1f}** | |")
    if summ["sweep"]:
        lines += ["", f"Mask ratio (seed {seeds[0]}):", "",
                  "| mask ratio | final MAE training loss | MAE then finetuned | k-NN | linear probe |",
                  "| ---: | ---: | ---: | ---: | ---: |"]
        for row in summ["sweep"]:
            loss = "" if row["pretrain_loss"] is None else f"{row['pretrain_loss']:.4f}"
            lines.append(f"| {row['mask_ratio']} | {loss} | {_pct(row['top1'])} | {_pct(row['knn_top1'])} | "
                         f"{_pct(row['linear_top1'])} |")
        if summ["scratch_seed0"]:
            lines.append(f"| (scratch) | | {_pct(summ['scratch_seed0']['top1'])} | | |")
    total = sum(step.get("seconds", 0) for step in results["steps"].values())
    lines += ["", f"Compute: {total / 60:.0f} min over {len(results['steps'])} steps."]
    return "\n".join(lines) + "\n"


def figure(summ: dict, results: dict):
    """Left: scratch vs MAE finetuning and random vs MAE probes (bars: mean, dots: seeds). Right: the
    mask-ratio sweep."""
    from matplotlib.figure import Figure  # optional (extra `viz`): the study runs without its plot

    st = summ["stats"]
    fig = Figure(figsize=(10, 4), dpi=120)
    ax = fig.add_subplot(1, 2, 1)
    groups = [("finetuned", "scratch_top1", "mae_top1"), ("k-NN", "random_knn", "mae_knn"),
              ("linear probe", "random_linear", "mae_linear")]
    for i, (label, a, b) in enumerate(groups):
        for j, (key, color, name) in enumerate(((a, "tab:gray", "scratch / random"), (b, "tab:blue", "MAE"))):
            v = st[key]
            if v["mean"] is None:
                continue
            x = i + (j - 0.5) * 0.38
            ax.bar(x, 100 * v["mean"], 0.36, color=color, label=name if i == 0 else None)
            ax.scatter([x] * len(v["values"]), [100 * y for y in v["values"]], color="black", s=10, zorder=3)
    ax.set_xticks(range(len(groups)), [g[0] for g in groups])
    ax.set_ylabel("top-1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"MAE (mask {results.get('recipe_ratio')}) vs none, {len(results.get('seeds', []))} seeds")
    ax.legend(loc="lower right")
    ax = fig.add_subplot(1, 2, 2)
    sweep = summ["sweep"]
    if sweep:
        x = [row["mask_ratio"] for row in sweep]
        for key, name, marker in (("top1", "MAE then finetuned", "o"), ("knn_top1", "k-NN", "s"),
                                  ("linear_top1", "linear probe", "^")):
            pts = [(xi, 100 * row[key]) for xi, row in zip(x, sweep) if row[key] is not None]
            if pts:
                ax.plot(*zip(*pts), marker=marker, label=name)
        if summ["scratch_seed0"]:
            ax.axhline(100 * summ["scratch_seed0"]["top1"], color="tab:gray", ls="--", label="scratch")
        ax.set_xlabel("mask ratio")
        ax.set_ylabel("top-1 (%)")
        ax.set_ylim(0, 100)
        ax.set_title("mask ratio (first seed)")
        ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
