"""Inference: `Predictor` (checkpoint or export -> labels + calibrated confidences), input sanitising, loading,
runners, the export bundle (`inference.export`), the HTTP app and the CLIs. It runs `models.net.MultiTaskNet`,
the network training uses, and imports no training code (Lightning, Hydra, torchmetrics)."""

from intentfusion.inference.loading import check_fallbacks, load_checkpoint_net, load_export_config
from intentfusion.inference.predictor import Predictor
from intentfusion.inference.text import CONTROL_CHARS, EMPTY, TRUNCATED

__all__ = [
    "CONTROL_CHARS",
    "EMPTY",
    "TRUNCATED",
    "Predictor",
    "check_fallbacks",
    "load_checkpoint_net",
    "load_export_config",
]
