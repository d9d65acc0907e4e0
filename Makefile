# famlink: two commands do everything from a fresh clone.
#   make demo   creates .venv, installs, runs the monthly job on data/sample
#   make test   creates .venv if missing and runs the whole suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT := out/demo
PLAN ?= countywide
AS_OF ?= 2024-12-31

export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := False
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: demo test lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@mkdir -p $(OUT)
	$(BIN)/famlink run --extracts data/sample --warehouse $(OUT)/warehouse.duckdb \
		--plan $(PLAN) --as-of $(AS_OF)
	$(BIN)/famlink rejects --warehouse $(OUT)/warehouse.duckdb --out $(OUT)/rejects.csv
	@echo
	@echo "Outputs in $(OUT)/:"
	@echo "  warehouse  $(OUT)/warehouse.duckdb   (query: .venv/bin/python -c \"import duckdb; print(duckdb.connect('$(OUT)/warehouse.duckdb', read_only=True).sql('from meta.deliveries'))\")"
	@echo "  rejects    $(OUT)/rejects.csv"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) out .pytest_cache
