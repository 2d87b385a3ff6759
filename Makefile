# textdrop: two commands on a fresh machine.
#   make run    OCR the bundled sample scans with the embedded engine; sidecars go to a temporary folder
#   make test   the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench clean

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

bench: $(VENV)/.installed
	$(BIN)/textdrop bench $(or $(DIR),../shared/eval/dev) --compare-raw

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache test-output
