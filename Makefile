# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv web test test-all lint demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip "setuptools>=77" wheel
	# tinysoundfont's wheel declares pyaudio (live playback only; needs system portaudio).
	$(BIN)/pip install -q --no-deps "tinysoundfont>=0.3.7"
	$(BIN)/pip install -q -e ".[train,test,beam,cloud]"
	touch $(STAMP)

venv: $(STAMP)

# The page of `iad-tf view` runs the model with LiteRT.js: the npm packages pinned in
# web/package-lock.json, copied into the package (iad_tf/view/static/vendor, not in git) so
# that an install or wheel made afterwards carries them. Needs node + npm (none at run time).
WEB_VENDOR := iad_tf/view/static/vendor
WEB_STAMP := $(WEB_VENDOR)/.installed
LITERT := web/node_modules/@litertjs
$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(WEB_VENDOR) && mkdir -p $(WEB_VENDOR)/litertjs/wasm
	cp $(LITERT)/core/dist/index.js $(WEB_VENDOR)/litertjs/core.js
	cp $(LITERT)/wasm-utils/dist/index.js $(WEB_VENDOR)/litertjs/wasm-utils.js
	cp $(LITERT)/core/wasm/litert_wasm_internal.js $(LITERT)/core/wasm/litert_wasm_internal.wasm \
	   $(LITERT)/core/wasm/litert_wasm_compat_internal.js $(LITERT)/core/wasm/litert_wasm_compat_internal.wasm \
	   $(LITERT)/core/wasm/litert_wasm_threaded_internal.js $(LITERT)/core/wasm/litert_wasm_threaded_internal.wasm \
	   $(WEB_VENDOR)/litertjs/wasm/
	cp web/NOTICE.md $(WEB_VENDOR)/NOTICE.md
	touch $(WEB_STAMP)

web: $(WEB_STAMP)

# Browser tests need the runtime (make web) and Debian's chromium (.ci/run installs it);
# without npm they skip, saying why.
test: $(STAMP)
	if command -v npm >/dev/null; then $(MAKE) web; else echo "npm not found: browser tests will skip"; fi
	$(BIN)/ruff check iad_tf tfrecords_tools tests bench
	$(BIN)/python -m pytest -q

# Also the slow rows (kill/resume of real training, musicnn); CI runs `make test` with
# IAD_TF_RUN_SLOW=1 set (.ci/run), which is the same.
test-all:
	IAD_TF_RUN_SLOW=1 $(MAKE) test

lint: $(STAMP)
	$(BIN)/ruff check iad_tf tfrecords_tools tests bench
	$(BIN)/ruff format --check iad_tf tfrecords_tools tests bench

demo: $(STAMP)
	$(BIN)/iad-tf demo --out demo-out

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) demo-out build *.egg-info web/node_modules $(WEB_VENDOR)
