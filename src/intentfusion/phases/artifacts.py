"""Per-phase artefacts: confusion matrix PNGs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402


def save_confusion_matrices(
    predictions: dict[str, tuple[torch.Tensor, torch.Tensor]],
    label_names: dict[str, list[str]],
    out_dir: Path,
) -> list[Path]:
    """One `confusion_<task>.png` per task from (predicted, gold) index tensors; returns the paths."""
    paths = []
    for task, (pred, gold) in predictions.items():
        names = label_names[task]
        fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(names) + 3), max(4, 0.45 * len(names) + 2)))
        ConfusionMatrixDisplay.from_predictions(
            gold.numpy(),
            pred.numpy(),
            labels=list(range(len(names))),
            display_labels=names,
            ax=ax,
            xticks_rotation=45,
            colorbar=False,
            include_values=len(names) <= 20,
        )
        ax.set_title(f"{task}: confusion (rows gold, columns predicted)")
        fig.tight_layout()
        path = out_dir / f"confusion_{task}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
