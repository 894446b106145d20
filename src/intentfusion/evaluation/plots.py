"""PNG plots for the evaluation metrics (matplotlib, Agg canvas; pyplot and its global state are never used).

* :func:`draw_reliability` draws one reliability diagram (per-bin accuracy vs confidence) on an axes.
* :func:`draw_oos_threshold_curve` draws OOS recall / in-scope accuracy / OOS F1 against the threshold.
* :func:`new_figure` / :func:`save_figure` create a figure on an Agg canvas and write it as a PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 120


def new_figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (5.0, 5.0)) -> tuple[Figure, list[Axes]]:
    """A figure on an Agg canvas with `nrows` x `ncols` axes (flattened, row-major), each `size` inches."""
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, list(axes.ravel())


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as a PNG to `path` (parent directories created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def draw_reliability(
    ax: Axes,
    edges: np.ndarray,
    accuracy: np.ndarray,
    confidence: np.ndarray,
    count: np.ndarray,
    ece: float,
    title: str,
) -> None:
    """Per-bin accuracy bars, the gap to the bin's mean confidence, the diagonal and the ECE in the legend.

    `edges` has n_bins + 1 entries; `accuracy`, `confidence`, `count` have n_bins entries (empty bins have
    count 0 and are not drawn). The share of samples in each bin is written above its bar, so a large gap on a
    nearly empty bin is not over-read.
    """
    left = edges[:-1]
    width = np.diff(edges)
    filled = count > 0
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.3", linewidth=1, zorder=3, label="perfect calibration")
    ax.bar(
        left[filled],
        accuracy[filled],
        width=width[filled],
        align="edge",
        color="tab:blue",
        edgecolor="navy",
        linewidth=0.6,
        label=f"accuracy (ECE = {ece:.3f})",
    )
    gap = confidence - accuracy
    ax.bar(
        left[filled],
        gap[filled],
        bottom=accuracy[filled],
        width=width[filled],
        align="edge",
        color="tab:red",
        alpha=0.3,
        edgecolor="tab:red",
        hatch="//",
        linewidth=0.6,
        label="gap to mean confidence",
    )
    total = max(int(count.sum()), 1)
    for x, w, a, c, n in zip(
        left[filled], width[filled], accuracy[filled], confidence[filled], count[filled], strict=True
    ):
        share = f"{n / total:.0%}" if n / total >= 0.005 else "<1%"
        ax.text(x + w / 2, max(a, c) + 0.01, share, ha="center", va="bottom", fontsize=6, color="0.3")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("confidence (max softmax probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=8)


def draw_oos_threshold_curve(
    ax: Axes,
    thresholds: Sequence[float],
    oos_recall: Sequence[float],
    in_scope_accuracy: Sequence[float],
    oos_f1: Sequence[float],
    chosen_threshold: float | None,
    title: str,
) -> None:
    """OOS recall, in-scope accuracy and OOS F1 against the max-softmax threshold; the chosen one marked."""
    ax.plot(thresholds, oos_recall, color="tab:red", label="OOS recall")
    ax.plot(thresholds, in_scope_accuracy, color="tab:blue", label="in-scope accuracy")
    ax.plot(thresholds, oos_f1, color="tab:green", linestyle=":", label="OOS F1")
    if chosen_threshold is not None:
        ax.axvline(
            chosen_threshold,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"chosen t = {chosen_threshold:.3f}",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("threshold t (predict OOS when max softmax probability < t)")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)


def save_confusion_matrices(
    predictions: dict[str, tuple[np.ndarray | object, np.ndarray | object] | object],
    label_names: dict[str, list[str]],
    out_dir: str | Path,
) -> list[Path]:
    """One `confusion_<task>.png` per task, from (predicted, gold) index tensors or a (C, C) confusion matrix
    (rows gold, columns predicted, as torchmetrics' `MulticlassConfusionMatrix` computes it); returns the paths."""
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    paths = []
    for task, value in predictions.items():
        names = label_names[task]
        if isinstance(value, tuple):
            pred, gold = (np.asarray(v) for v in value)
            matrix = confusion_matrix(gold, pred, labels=list(range(len(names))))
        else:
            matrix = np.asarray(value)
        side = max(5, 0.45 * len(names) + 3)
        fig, (ax,) = new_figure(size=(side, max(4, 0.45 * len(names) + 2)))
        ConfusionMatrixDisplay(matrix, display_labels=names).plot(
            ax=ax, xticks_rotation=45, colorbar=False, include_values=len(names) <= 20)
        ax.set_title(f"{task}: confusion (rows gold, columns predicted)")
        paths.append(save_figure(fig, Path(out_dir) / f"confusion_{task}.png"))
    return paths
