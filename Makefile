# router-ml: `make train` and `make test` set up .venv on first use.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install train test bench eval clean-venv data-check

install: $(STAMP)

# torch goes first and pinned: an unpinned torch resolves to a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $(STAMP)

# The runtime backend of the model: static (default), onnx or st (docs/benchmarks.md#runtime-backends).
BACKEND ?= static
train: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/router-ml train --backend $(BACKEND) --data data/ --out models/

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m train.bench --out docs/benchmarks-router.json
	HF_HUB_OFFLINE=1 $(BIN)/python -m train.bench_backends --out docs/benchmarks-backends.json
	$(BIN)/python -m train.bench_label

# Refresh docs/eval/ (committed) with the model in models/: labeled data side by side (a data
# directory is scored on its splits.json dev split), then the external benchmarks in
# ../shared/benchmarks (skipped when absent). `make eval EVAL_DATA=file.jsonl` scores another set.
EVAL_DATA ?= data/
eval: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/router-ml evaluate --data $(EVAL_DATA) --router all --by tags --by domain --by lang --report docs/eval
	HF_HUB_OFFLINE=1 $(BIN)/router-ml bench external --report docs/eval

# The TypeScript example's packages, from its lock file; tests/test_proxy.py runs the example when they
# are installed (and skips it otherwise). Without npm there is nothing to do.
examples-deps:
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix examples/typescript --no-audit --no-fund; \
	else echo "npm not found: the TypeScript example's test will be skipped"; fi

data-check: $(STAMP)
	$(BIN)/router-ml data check data/

clean-venv:
	rm -rf $(VENV)
