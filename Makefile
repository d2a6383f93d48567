# router-ml: `make train` and `make test` set up .venv on first use.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install train test bench clean-venv data-check

install: $(STAMP)

# torch goes first and pinned: an unpinned torch resolves to a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/router-ml train --data data/ --out models/

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m train.bench
	$(BIN)/python -m train.bench_label

data-check: $(STAMP)
	$(BIN)/router-ml data check data/

clean-venv:
	rm -rf $(VENV)
