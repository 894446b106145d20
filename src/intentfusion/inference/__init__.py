"""Inference: `Predictor` (checkpoint or export -> labels + calibrated confidences), input sanitising, the
inference-only network and its ONNX graph. Imports no training code (Lightning, Hydra)."""

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
