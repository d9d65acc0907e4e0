# famlink: two commands do everything from a fresh clone.
#   make demo   creates .venv, installs, runs the monthly job on data/sample
#               (PLAN=thurrock: on a sample generated for that plan)
#   make test   creates .venv if missing and runs the whole suite
# .venv holds famlink and, beside it, the synthetic county generator (generator/, its own
# package: the tests, benchmarks, `famlink generate` and the PLAN demo use it, the pipeline never)
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT := out/demo
PLAN ?= countywide
AS_OF ?= 2024-12-31
# the shipped sample is made for countywide; another plan's demo runs on one generated for it
SAMPLE := $(if $(filter countywide,$(PLAN)),data/sample,out/sample_$(PLAN))

export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := False
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: demo test lint venv clean browser

venv: $(STAMP)

$(STAMP): pyproject.toml generator/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./generator
	touch $(STAMP)

demo: $(STAMP)
	@rm -rf $(OUT) && mkdir -p $(OUT)
	@if [ "$(PLAN)" != countywide ]; then \
		echo "data/sample is made for countywide: generating a sample for $(PLAN) in $(SAMPLE)"; \
		$(BIN)/famlink generate --plan $(PLAN) --seed 1 --out $(SAMPLE) >/dev/null; fi
	$(BIN)/famlink run --extracts $(SAMPLE) --warehouse $(OUT)/warehouse.duckdb \
		--plan $(PLAN) --as-of $(AS_OF)
	$(BIN)/famlink rejects --warehouse $(OUT)/warehouse.duckdb --out $(OUT)/rejects.csv
	$(BIN)/famlink return --warehouse $(OUT)/warehouse.duckdb --as-of $(AS_OF) --out-dir $(OUT)
	$(BIN)/famlink claims --warehouse $(OUT)/warehouse.duckdb --as-of $(AS_OF) \
		--out $(OUT)/claims.csv
	@family=$$(sed -n 2p $(OUT)/claims.csv | cut -d, -f1); \
	echo; echo "Outputs in $(OUT)/:"; \
	echo "  claim list   $(OUT)/claims.csv   ($$(($$(wc -l < $(OUT)/claims.csv) - 1)) claims," \
	     "GBP $$(grep '^total_claimed_gbp,' $(OUT)/claims_return_$(PLAN)_$(AS_OF)_totals.csv | cut -d, -f2))"; \
	echo "  return       $(OUT)/claims_return_$(PLAN)_$(AS_OF).csv and .xlsx"; \
	echo "  rejects      $(OUT)/rejects.csv"; \
	echo "  run report   $(OUT)/reports/run_$(AS_OF).html"; \
	echo "  linkage      $(OUT)/reports/linkage_$(AS_OF).html"; \
	echo "  warehouse    $(OUT)/warehouse.duckdb  (famlink query 'FROM deliveries' --warehouse $(OUT)/warehouse.duckdb: the analyst layer)"; \
	echo; echo "Explain a family's claim to audit:"; \
	echo "  $(BIN)/famlink explain $${family:-FAMILY_ID} --warehouse $(OUT)/warehouse.duckdb --html $(OUT)/explain_$${family:-family}.html"

# tests/test_run_report.py draws the run report in headless Chromium: installed
# here when missing (as root, e.g. CI on a fresh machine); otherwise that test skips.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "warning: no chromium (sudo apt-get install chromium): the browser test skips"; \
	fi

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) out .pytest_cache
