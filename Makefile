# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip "setuptools>=77" wheel
	# tinysoundfont's wheel declares pyaudio (live playback only; needs system portaudio).
	$(BIN)/pip install -q --no-deps "tinysoundfont>=0.3.7"
	$(BIN)/pip install -q -e ".[train,test,beam,cloud]"
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check iad_tf tfrecords_tools tests bench
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check iad_tf tfrecords_tools tests bench
	$(BIN)/ruff format --check iad_tf tfrecords_tools tests bench

demo: $(STAMP)
	$(BIN)/iad-tf demo --out demo-out

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) demo-out build *.egg-info
