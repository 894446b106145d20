"""`bench.machine`: the FLOP count behind the msgs/s bound (no timing assertions)."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig

from bench.machine import analytic_flops, flops_at, matmul_gflops, model_flops, model_shapes

TINY = BertConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  max_position_embeddings=64)


@pytest.mark.parametrize("length", [1, 7, 16])
def test_flop_counter_matches_two_macs_of_linears_plus_attention(length: int) -> None:
    """FlopCounterMode on the inference net = 2 x MACs of Q, K, V, O, FFN + 4 L^2 H attention + the head."""
    assert model_flops(TINY, length, num_labels=5) == analytic_flops(TINY, length, num_labels=5)


def test_count_leaves_the_config_alone() -> None:
    config = BertConfig.from_dict(TINY.to_dict())
    model_flops(config, 4, num_labels=3)
    assert config.to_dict() == TINY.to_dict()  # the eager-attention switch happens on a copy


def test_fractional_length_interpolates_between_neighbours() -> None:
    lo, hi = analytic_flops(TINY, 5, 3), analytic_flops(TINY, 6, 3)
    assert flops_at(TINY, 5.25, 3) == pytest.approx(lo + 0.25 * (hi - lo))
    assert flops_at(TINY, 5.0, 3) == lo


def test_model_shapes_cover_every_linear_flop_of_a_layer() -> None:
    tokens = 40
    per_layer = sum(2 * m * k * n * count for m, k, n, count in model_shapes(TINY, tokens).values())
    h, i = TINY.hidden_size, TINY.intermediate_size
    assert per_layer == 2 * tokens * (4 * h * h + 2 * h * i)


def test_matmul_gflops_is_a_positive_rate() -> None:
    assert matmul_gflops(16, 32, 16, torch.float32, seconds=0.01, blocks=2) > 0
