"""Pattern pools split once by id (never by seed), and pieces whose entity spans survive filling and joining."""

from __future__ import annotations

import random

import pytest

from intentfusion.data.patterns import SPLITS, Piece, Pool, fill, join, split_of


def test_every_pool_has_each_split_and_the_split_is_the_ids_not_the_seed() -> None:
    for size in range(3, 23):
        splits = [split_of(k, size) for k in range(size)]
        assert set(splits) == set(SPLITS)
        assert splits == [split_of(k, size) for k in range(size)]  # a pure function of (k, size)
    assert [split_of(k, 10) for k in range(10)] == ["train"] * 3 + ["val", "test"] + ["train"] * 3 + ["val", "test"]
    with pytest.raises(ValueError, match="at least 3 patterns"):
        split_of(0, 2)


def test_pool_draws_only_from_the_split_part() -> None:
    pool = Pool("frame/en", tuple(f"pattern {k} {{X}}" for k in range(12)))
    parts = {s: {pid for pid, _ in pool.part(s)} for s in SPLITS}
    assert not parts["train"] & parts["test"] and not parts["val"] & parts["test"] and not parts["train"] & parts["val"]
    assert set().union(*parts.values()) == {f"frame/en/{k}" for k in range(12)}
    for seed in range(5):
        rng = random.Random(seed)
        assert all(pool.draw("test", rng)[0] in parts["test"] for _ in range(20))
    with pytest.raises(ValueError, match="duplicate"):
        Pool("x", ("a", "a", "b"))


def test_spans_follow_their_text_through_fill_and_join() -> None:
    order = Piece("#A1-48213", ((0, 9, "order_id"),))
    amount = Piece("49,99 €", ((0, 7, "amount"),))
    core = fill("mi pedido {order} de {amount} no llegó", {"order": lambda: order, "amount": lambda: amount})
    message = join([Piece("Hola."), Piece(""), core, Piece("Gracias, María.")])
    assert message.text == "Hola. mi pedido #A1-48213 de 49,99 € no llegó Gracias, María."
    assert [(message.text[s:e], label) for s, e, label in message.spans] == [
        ("#A1-48213", "order_id"), ("49,99 €", "amount")]
