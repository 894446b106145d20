"""Side-by-side benchmarks: `python -m bench [--quick]` (or `make bench`).

Each section module (`training`, `inference`, `machine`) exposes ``run(ctx: Context) -> Section``; the
entry point (`bench.__main__`) writes every figure to ``bench/results/<date>.json`` and regenerates the
generated part of ``BENCHMARKS.md`` (`bench.report`). Ratios are taken between tools measured in the same
run, because absolute times on a shared machine are noise.
"""
