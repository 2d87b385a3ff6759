# textdrop: two commands on a fresh machine.
#   make run    OCR the bundled sample scans with the embedded engine; sidecars go to a temporary folder
#   make test   the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench package clean screenshots

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(BIN)/activate
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(BIN)/activate
	$(BIN)/pip install --quiet -e ".[dev,llama,mlx,desktop]"
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	@out=$$(mktemp -d "$${TMPDIR:-/tmp}/textdrop-samples.XXXXXX"); \
	$(BIN)/textdrop ocr assets/samples --out-dir "$$out" --force && \
	for f in "$$out"/*.md; do printf '\n===== %s =====\n' "$$f"; cat "$$f"; done && \
	printf '\nSidecars written to %s\n' "$$out"

test: $(VENV)/.installed-dev
	$(BIN)/ruff check textdrop tests
	$(BIN)/ruff format --check textdrop tests
	TEXTDROP_SCREENSHOTS=$(CURDIR)/test-output/screenshots $(BIN)/pytest

# The bundle is built in a venv of its own with only what it ships: the [desktop] extra, plus
# PACKAGE_EXTRAS (e.g. `make package PACKAGE_EXTRAS=llama` to include llama.cpp).
PKG_VENV := .venv-package
PACKAGE_EXTRAS ?=
comma := ,

$(PKG_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(PKG_VENV)
	$(PKG_VENV)/bin/pip install --quiet --upgrade pip
	$(PKG_VENV)/bin/pip install --quiet ".[desktop$(if $(PACKAGE_EXTRAS),$(comma)$(PACKAGE_EXTRAS))]" "pyinstaller>=6.10,<7"
	touch $@

package: $(PKG_VENV)/.installed
	$(PKG_VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN \
		--distpath dist --workpath build/pyinstaller packaging/textdrop.spec
	@du -sh dist/textdrop

bench: $(VENV)/.installed
	$(BIN)/textdrop bench $(or $(DIR),../shared/eval/dev) --compare-raw

# The tray app's screens (menu, overlay, drop window, Settings tabs, notification), light and dark, at
# 1366×768 on a virtual X display (needs xvfb, trayer, x11-utils): docs/screenshots/*.png
screenshots: $(VENV)/.installed-dev
	$(BIN)/python docs/screenshots.py --out docs/screenshots

clean:
	rm -rf $(VENV) $(PKG_VENV) build dist *.egg-info .pytest_cache .ruff_cache test-output
