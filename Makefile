# The two commands of the README: `make demo` and `make test`. Both build .venv from the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DATA ?= data/phantom

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): requirements.lock setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	test -f $(DEMO_DATA)/manifest.csv || $(BIN)/python -m cmri2spec_tf.phantom --out_dir=$(DEMO_DATA)
	$(BIN)/python -m cmri2spec_tf.check_data --data_dir=$(DEMO_DATA)
	$(BIN)/python -m cmri2spec_tf.train --flagfile=configs/demo.cfg --data_dir=$(DEMO_DATA)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) data/ runs/ .pytest_cache
