"""Out-of-scope scorers as plugins: `max_softmax` built in; a toy scorer defined and registered here is evaluated end to
end (training, `evaluate.py`'s suite, its threshold chosen on validation, its curve, report.md) with no change to
`src/`; an unknown scorer is a one-line config error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from intentfusion.errors import ConfigError, one_line
from intentfusion.oos import OOS_SCORERS, MaxSoftmax, OOSScorer, ScorerInputs, oos_scorer, register_oos_scorer


@register_oos_scorer("toy_margin")
class Margin(OOSScorer):
    """In-scope score = the gap between the two most probable intents."""

    def score(self, inputs: ScorerInputs) -> torch.Tensor:
        top = inputs.logits.float().softmax(-1).topk(2, dim=-1).values
        return top[:, 0] - top[:, 1]


def test_max_softmax_is_the_highest_probability() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    expected = [float(logits[0].softmax(-1).max()), 1 / 3]
    assert MaxSoftmax().score(ScorerInputs(logits)).tolist() == pytest.approx(expected)
    assert OOS_SCORERS["max_softmax"] is MaxSoftmax and oos_scorer("toy_margin") is Margin


def test_an_unknown_scorer_is_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        oos_scorer("energie")
    assert one_line(err.value).startswith("error: suite.oos_scorers: unknown out-of-scope scorer 'energie'")


def test_a_scorer_defined_in_a_test_gets_its_threshold_on_validation_and_its_report(cfg_factory) -> None:
    from intentfusion.train import train

    cfg = cfg_factory("phases=full", "hparams.epochs=2", "evaluate=true", "data.source.n=480", "tasks=support4",
                      "hparams.lr=2e-3", "trainer.precision=32", "suite.oos_scorers=[max_softmax,toy_margin]",
                      "suite.fuzzy=false")
    train(cfg)
    out = Path(cfg.paths.output_dir) / "eval"
    oos = json.loads((out / "metrics.json").read_text())["suite"]["oos"]
    assert {"max_softmax", "toy_margin"} <= set(oos)
    assert oos["toy_margin"]["n_oos"] == oos["max_softmax"]["n_oos"] == 7 and 0 <= oos["toy_margin"]["value"] <= 1
    assert (out / "oos_threshold_toy_margin.png").is_file() and (out / "oos_threshold.png").is_file()
    assert "| toy_margin |" in (out / "report.md").read_text()
