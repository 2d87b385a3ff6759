# textdrop: two commands on a fresh machine.
#   make run    OCR the bundled sample scans with the embedded engine; sidecars go to a temporary folder
#   make test   the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The toolchain is pinned: every machine builds from uv.lock with the same pip and uv (ADR 008).
PIP_VERSION := 26.3
UV_VERSION  := 0.13.9
# uv installs into .venv and keeps what it did not install itself (pip, uv); --locked fails when
# pyproject.toml changed without `make lock`.
SYNC := UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --locked --inexact --quiet
TEST_EXTRAS := --extra dev --extra llama --extra mlx --extra desktop

.PHONY: run test lint lock bench package clean screenshots

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "pip==$(PIP_VERSION)" "uv==$(UV_VERSION)"

$(VENV)/.installed: pyproject.toml uv.lock $(BIN)/uv
	$(SYNC)
	touch $@

$(VENV)/.installed-dev: pyproject.toml uv.lock $(BIN)/uv
	$(SYNC) $(TEST_EXTRAS)
	touch $@ $(VENV)/.installed

# Refresh uv.lock after changing a dependency in pyproject.toml (resolves for every platform).
lock: $(BIN)/uv
	$(BIN)/uv lock

run: $(VENV)/.installed
	@out=$$(mktemp -d "$${TMPDIR:-/tmp}/textdrop-samples.XXXXXX"); \
	$(BIN)/textdrop ocr assets/samples --out-dir "$$out" --force && \
	for f in "$$out"/*.md; do printf '\n===== %s =====\n' "$$f"; cat "$$f"; done && \
	printf '\nSidecars written to %s\n' "$$out"

test: $(VENV)/.installed-dev
	$(BIN)/ruff check textdrop tests
	$(BIN)/ruff format --check textdrop tests
	TEXTDROP_SCREENSHOTS=$(CURDIR)/test-output/screenshots $(BIN)/pytest

# The bundle is built in a venv of its own with only what it ships: the [desktop] and [server] extras, plus
# PACKAGE_EXTRAS (e.g. `make package PACKAGE_EXTRAS=llama` to include llama.cpp).
PKG_VENV := .venv-package
PACKAGE_EXTRAS ?=

$(PKG_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(PKG_VENV)
	$(PKG_VENV)/bin/pip install --quiet "pip==$(PIP_VERSION)" "uv==$(UV_VERSION)"
	UV_PROJECT_ENVIRONMENT=$(PKG_VENV) $(PKG_VENV)/bin/uv sync --locked --inexact --quiet --no-editable \
		--extra desktop --extra server --extra package $(foreach extra,$(PACKAGE_EXTRAS),--extra $(extra))
	touch $@

package: $(PKG_VENV)/.installed
	$(PKG_VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN \
		--distpath dist --workpath build/pyinstaller packaging/textdrop.spec
	@du -sh dist/textdrop

bench: $(VENV)/.installed-dev
	$(BIN)/textdrop bench $(or $(DIR),../shared/eval/dev) --compare-raw

# The tray app's screens (menu, overlay, drop window, Settings tabs, notification), light and dark, at
# 1366×768 on a virtual X display (needs xvfb, trayer, x11-utils): docs/screenshots/*.png
screenshots: $(VENV)/.installed-dev
	$(BIN)/python docs/screenshots.py --out docs/screenshots

clean:
	rm -rf $(VENV) $(PKG_VENV) build dist *.egg-info .pytest_cache .ruff_cache test-output
