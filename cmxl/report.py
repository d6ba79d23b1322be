"""Table 1 and Figures 3-6, from saved runs only: this module never trains.

Runs are read from RESULTS/<profile>/<preset>/<run>/ (as `cmxl ablate` lays them out). Per preset, the runs of the
newest finished config are used (several seeds give mean ± std); runs of older configs are ignored, never mixed in.
Anything not made with the paper's protocol (CIFAR-10, 100 epochs, the paper's recipe) is labelled so on every output.
"""
import csv
import io
import json
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from cmxl.ablation import config_hash
from cmxl.config import PRESETS, RunConfig, preset
from cmxl.errors import UserError
from cmxl.files import write_text

# where and how fast a run went, not what it computed
_RUNTIME_KEYS = ("data_dir", "seed", "workers", "device", "channels_last", "compile")


@dataclass
class SavedRun:
    preset: str
    run_dir: Path
    config: RunConfig
    metrics: dict

    @cached_property
    def history(self):
        import pandas as pd
        return pd.read_csv(self.run_dir / "history.csv")


def collect(results_dir, profile: str) -> dict[str, list[SavedRun]]:
    """preset -> its finished runs of the newest config (possibly several seeds); presets without runs are absent."""
    root = Path(results_dir) / profile
    found = {}
    for name in PRESETS:
        runs = []
        for metrics in (root / name).glob("*/metrics.json"):
            cfg = RunConfig.from_dict(json.loads((metrics.parent / "config.json").read_text()))
            runs.append((metrics.stat().st_mtime, SavedRun(name, metrics.parent, cfg, json.loads(metrics.read_text()))))
        if runs:
            newest = config_hash(max(runs, key=lambda r: r[0])[1].config, _RUNTIME_KEYS)
            found[name] = sorted((r for _, r in runs if config_hash(r.config, _RUNTIME_KEYS) == newest),
                                 key=lambda r: r.config.seed)
    return found


def is_paper_protocol(cfg: RunConfig) -> bool:
    paper = replace(preset(cfg.preset), data="cifar10")
    return config_hash(cfg, _RUNTIME_KEYS) == config_hash(paper, _RUNTIME_KEYS)


def protocol_line(runs: dict[str, list[SavedRun]], profile: str) -> str:
    configs = [r.config for rs in runs.values() for r in rs]
    if not configs:
        return f"profile {profile}: no finished runs"
    data = ", ".join(sorted({c.data for c in configs}))
    epochs = ", ".join(str(e) for e in sorted({c.epochs for c in configs}))
    line = f"data: {data} | epochs: {epochs} | profile: {profile}"
    if not all(is_paper_protocol(c) for c in configs):
        line += (" | NOT the paper's protocol (CIFAR-10, 100 epochs, the paper's recipe): "
                 "these numbers are not comparable with the paper's column")
    return line


# --- Table 1 -----------------------------------------------------------------------------------------------------

@dataclass
class Table1:
    header: str
    rows: list[dict]

    COLUMNS = ("Name", "Activation", "Depth", "Inter-Block Skip", "Augmentations", "#Params (M)", "Top-1 (ours)",
               "n", "Top-1 (paper)", "Δ")
    FOOTNOTE = ("mean ± std over n seeds; Δ = ours − paper, shown only for rows run with the paper's protocol; "
                "'missing' = no finished run")

    def cells(self, row: dict) -> list[str]:
        ours = "missing" if row["n"] == 0 else (
            f"{row['top1_mean']:.2f}" + (f" ± {row['top1_std']:.2f}" if row["n"] > 1 else ""))
        # a difference from the paper means something only under the paper's protocol
        delta = f"{row['top1_mean'] - row['paper_top1']:+.2f}" if row["n"] and row["paper_protocol"] else ""
        params = "" if row["params"] is None else f"{row['params'] / 1e6:.3g}"
        return [row["name"], row["activation"], str(row["depth"]), row["skip"], row["augment"], params, ours,
                str(row["n"]), f"{row['paper_top1']:.2f}", delta]

    def markdown(self) -> str:
        lines = [f"**Table 1** — {self.header}", "", "| " + " | ".join(self.COLUMNS) + " |",
                 "|" + "---|" * len(self.COLUMNS)]
        lines += ["| " + " | ".join(self.cells(r)) + " |" for r in self.rows]
        lines += ["", f"Top-1 in % on the test half of the test set; {self.FOOTNOTE}"]
        return "\n".join(lines) + "\n"

    def latex(self) -> str:
        esc = lambda s: s.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("#", r"\#").replace("_", r"\_")
        lines = [f"% {self.header}", r"\begin{tabular}{lllllrrrrr}", r"\toprule",
                 " & ".join(esc(c) for c in self.COLUMNS) + r" \\", r"\midrule"]
        lines += [" & ".join(esc(c) for c in self.cells(r)) + r" \\" for r in self.rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buf = io.StringIO()
        keys = list(self.rows[0])
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        buf.write(f"# {self.header}\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in self.rows)
        return buf.getvalue()


def table1(results_dir, profile: str) -> Table1:
    runs = collect(results_dir, profile)
    rows = []
    for name, spec in PRESETS.items():
        cfg = runs[name][0].config if name in runs else preset(name)
        top1 = np.array([r.metrics["test_top1"] for r in runs.get(name, [])])
        rows.append(dict(
            name=name, activation=cfg.activation, depth=cfg.depth, skip="Yes" if cfg.inter_block_skip else "No",
            augment="Yes" if cfg.augment else "No",
            params=runs[name][0].metrics["params"] if name in runs else None,
            top1_mean=float(top1.mean()) if len(top1) else None,
            top1_std=float(top1.std(ddof=1)) if len(top1) > 1 else None,
            n=len(top1), paper_top1=spec.paper_top1, paper_params_m=spec.paper_params_m,
            paper_protocol=name in runs and all(is_paper_protocol(r.config) for r in runs[name]),
            seeds=" ".join(str(r.config.seed) for r in runs.get(name, [])),
            runs=" ".join(str(r.run_dir) for r in runs.get(name, []))))
    return Table1(protocol_line(runs, profile), rows)


def write_table1(results_dir, profile: str) -> Table1:
    """Build Table 1 and write table1.csv / .md / .tex into results_dir."""
    table = table1(results_dir, profile)
    for suffix, text in (("csv", table.csv()), ("md", table.markdown()), ("tex", table.latex())):
        write_text(Path(results_dir) / f"table1.{suffix}", text)
    return table


# --- Figures -----------------------------------------------------------------------------------------------------

def _plt():
    import matplotlib.pyplot as plt  # matplotlib picks Agg by itself where there is no display
    import seaborn as sns
    sns.set_theme(style="whitegrid", context="paper")
    return plt


def colours() -> dict[str, tuple]:
    """One fixed colour per Table 1 configuration, the same in every figure."""
    import seaborn as sns
    return dict(zip(PRESETS, sns.color_palette("colorblind", len(PRESETS))))


def _curves(ax, runs: dict[str, list[SavedRun]], names: list[str]) -> list[float]:
    finals, palette = [], colours()
    for name in names:
        histories = [r.history for r in runs[name]]
        epochs = histories[0]["epoch"].to_numpy()
        accs = np.stack([h["val_acc"].to_numpy()[: len(epochs)] for h in histories])
        mean = accs.mean(0)
        label = name + (f" (n={len(accs)})" if len(accs) > 1 else "")
        ax.plot(epochs, mean, color=palette[name], label=label, lw=1.6)
        if len(accs) > 1:
            ax.fill_between(epochs, accs.min(0), accs.max(0), color=palette[name], alpha=0.2, lw=0)
        finals.append(float(mean[-1]))
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation top-1 accuracy (%)")
    ax.legend(loc="best", fontsize=8)
    return finals


def _save(fig, figures_dir: Path, stem: str) -> Path:
    figures_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("pdf", "png"):
        tmp = figures_dir / f".{stem}.tmp.{suffix}"
        fig.savefig(tmp, dpi=200, bbox_inches="tight")
        tmp.replace(figures_dir / f"{stem}.{suffix}")
    return figures_dir / f"{stem}.png"


def _grid(plt, images, titles, suptitle: str):
    n = max(1, int(np.ceil(np.sqrt(len(images)))))
    fig, axes = plt.subplots(n, n, figsize=(6, 7), layout="constrained")
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, img, title in zip(np.atleast_1d(axes).ravel(), images, titles):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    if not images:
        fig.text(0.5, 0.5, "none", ha="center", va="center", fontsize=14)
    fig.suptitle(suptitle, fontsize=9)
    return fig


def _samples(preds, dataset, correct: bool, k: int = 16):
    """Up to k test predictions that are (in)correct, and their images."""
    pool = preds[(preds["label"] == preds["predicted"]) == correct]
    # a seeded sample, in test order: the first k would all be one class where the test set is sorted by class
    chosen = pool.sample(n=min(k, len(pool)), random_state=0).sort_index()
    position = {int(i): p for p, i in enumerate(dataset.test.indices)}
    return chosen, [dataset.test.images[position[int(i)]] for i in chosen["index"]]


def write_figures(results_dir, profile: str, figures_dir="figures") -> list[Path]:
    """Render Figures 3-6 as PNG and PDF into figures_dir; return the PNG paths."""
    import pandas as pd
    from cmxl import data as datasets

    plt, figures_dir = _plt(), Path(figures_dir)
    runs = collect(results_dir, profile)
    if not runs:
        raise UserError(f"no finished runs under {Path(results_dir) / profile}: run `cmxl ablate --profile {profile}` first")
    label = protocol_line(runs, profile)
    wrap = lambda s: s.replace(" | NOT", "\nNOT").replace(": these", ":\nthese")
    paths = []

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _curves(ax, runs, list(runs))
    ax.set_title(f"Figure 3: validation accuracy per epoch\n{wrap(label)}", fontsize=8)
    paths.append(_save(fig, figures_dir, "fig3_val_accuracy"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    shown = [n for n in runs if n != "CM-XL-NoSkip"]
    finals = _curves(ax, runs, shown or list(runs))
    top = max(max(r.history["val_acc"].max() for r in runs[n]) for n in (shown or list(runs)))
    ax.set_ylim(max(0.0, min(finals) - 5), min(100.0, top + 1))
    ax.set_title(f"Figure 4: validation accuracy, top band (without CM-XL-NoSkip)\n{wrap(label)}", fontsize=8)
    paths.append(_save(fig, figures_dir, "fig4_val_accuracy_zoom"))
    plt.close(fig)

    best = max((r for rs in runs.values() for r in rs), key=lambda r: r.metrics["test_top1"])
    about = f"{best.preset} (seed {best.config.seed}, test top-1 {best.metrics['test_top1']:.2f}%) | {label}"
    preds, dataset = pd.read_csv(best.run_dir / "test_predictions.csv"), datasets.load(best.config)
    classes = dataset.classes
    for correct, stem, fig_no in ((True, "fig5_correct", 5), (False, "fig6_misclassified", 6)):
        chosen, images = _samples(preds, dataset, correct)
        if correct:
            titles = [classes[p] for p in chosen["predicted"]]
            what = "correctly classified test images, titled with the predicted class"
        else:
            titles = [f"pred: {classes[p]}\ntrue: {classes[t]}" for p, t in zip(chosen["predicted"], chosen["label"])]
            what = "misclassified test images, predicted and true class"
        fig = _grid(plt, images, titles, f"Figure {fig_no}: {what}\n{wrap(about)}")
        paths.append(_save(fig, figures_dir, stem))
        plt.close(fig)
    return paths


def plot_run(run_dir):
    """A small figure of one run's curves, with its final numbers in the title (for 01_train.ipynb)."""
    import pandas as pd
    plt = _plt()
    run_dir = Path(run_dir)
    h = pd.read_csv(run_dir / "history.csv")
    m = json.loads((run_dir / "metrics.json").read_text())
    fig, (loss, acc) = plt.subplots(1, 2, figsize=(9, 3.2))
    loss.plot(h["epoch"], h["train_loss"], label="train")
    loss.plot(h["epoch"], h["val_loss"], label="validation")
    loss.set(xlabel="epoch", ylabel="cross-entropy")
    acc.plot(h["epoch"], h["train_acc"], label="train")
    acc.plot(h["epoch"], h["val_acc"], label="validation")
    acc.set(xlabel="epoch", ylabel="top-1 accuracy (%)")
    for ax in (loss, acc):
        ax.legend()
    synthetic = " [SYNTHETIC data]" if m["synthetic"] else ""
    fig.suptitle(f"{m['name']}: test top-1 {m['test_top1']:.2f}%, {m['params']:,} params, {m['epochs']} epochs, "
                 f"{m['wall_seconds']:.0f} s{synthetic}", fontsize=9)
    fig.tight_layout()
    return fig
