# The two commands of the README: `make demo` and `make test`. Both build .venv from the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DATA ?= data/phantom

TFIO_VENV := .venv-tfio
TFIO_STAMP := $(TFIO_VENV)/.installed

.PHONY: demo demo-rtmri test test-tfio install install-gpu clean

install: $(STAMP)

$(STAMP): requirements.lock requirements-runtime.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	@# librosa's compiled functions into numba's cache now (~40 s on 2 cores, once) rather than
	@# at the first command or test that computes speech (base/numba_cache.py)
	$(BIN)/python -c "from cmri2spec_tf.base import numba_cache; numba_cache.librosa()"
	touch $(STAMP)

# A GPU workstation without Docker (Linux x86-64, NVIDIA driver installed): the same
# environment plus the CUDA libraries TensorFlow 2.21 needs, from PyPI (tensorflow[and-cuda]).
install-gpu: $(STAMP)
	$(BIN)/pip install -q --no-build-isolation -e ".[gpu]" -c requirements-runtime.lock
	$(BIN)/python -c "from cmri2spec_tf import cli; from cmri2spec_tf.base import machine; cli.set_environment_defaults(); print(machine.device_report())"

demo: $(STAMP)
	test -f $(DEMO_DATA)/manifest.csv || $(BIN)/python -m cmri2spec_tf.phantom --out_dir=$(DEMO_DATA)
	$(BIN)/python -m cmri2spec_tf.check_data --data_dir=$(DEMO_DATA)
	$(BIN)/python -m cmri2spec_tf.train --flagfile=configs/demo.cfg --data_dir=$(DEMO_DATA)

# The real-time MRI path: phantom videos -> check -> time-aligned training -> evaluate (whole
# utterances too).
RTMRI_DATA ?= data/rtmri
demo-rtmri: $(STAMP)
	test -f $(RTMRI_DATA)/recordings.csv || $(BIN)/python -m cmri2spec_tf.phantom --rtmri --out_dir=$(RTMRI_DATA) --ageese=12 --asouk=12
	$(BIN)/python -m cmri2spec_tf.check_data --data_dir=$(RTMRI_DATA)/recordings.csv
	@echo "demo-rtmri: time-aligned clips of the whole recordings (--pairing=time), the protocol that won on this phantom (docs/results.md)"
	$(BIN)/python -m cmri2spec_tf.train --flagfile=configs/rtmri_demo.cfg --data_dir=$(RTMRI_DATA)/recordings.csv
	$(BIN)/python -m cmri2spec_tf.evaluate --model_dir=runs/rtmri_demo

# Two workers: the suite waits on its commands' processes and on single-threaded tracing much of
# the time, so two cores finish it in ~10 minutes rather than ~13 (shared fixtures are built once,
# under a file lock: tests/conftest.py).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=15 tests

# The optional tensorflow-io extra in its own environment (TF 2.17.1): its tests must run, not skip.
$(TFIO_STAMP): requirements-tfio.lock pyproject.toml
	$(PYTHON) -m venv $(TFIO_VENV)
	$(TFIO_VENV)/bin/pip install -q -r requirements-tfio.lock
	$(TFIO_VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	touch $(TFIO_STAMP)

test-tfio: $(TFIO_STAMP)
	CMRI2SPEC_REQUIRE_TFIO=1 $(TFIO_VENV)/bin/python -m pytest -q tests/test_tfio.py

clean:
	rm -rf $(VENV) $(TFIO_VENV) data/ runs/ .pytest_cache
