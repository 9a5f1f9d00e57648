# digest: `make demo` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-stamp

.PHONY: demo test test-fast lint format bench eval screenshots clean

# (Re)create the virtualenv and install what the job needs whenever pyproject.toml
# changes (pip's progress shows: the first install takes a while); the test and
# development tools come with `make test` (the `test` extra).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(TEST_STAMP)

demo: $(STAMP)
	@mkdir -p var
	$(BIN)/digest config check
	@# A rerun never brings back a demo reader who unsubscribed: digest says so and
	@# exits 1, and the demo goes on (the leading '-').
	-$(BIN)/digest subscribe ada@example.org --name "Ada Lovelace" \
	    --topic "Alignment: rlhf OR dpo OR alignment" --topic "Fairness: title:fairness"
	-$(BIN)/digest subscribe grace@example.org --name "Grace Hopper" \
	    --topic "Optimization: title:optimiz*" --theme dark
	-$(BIN)/digest subscribe alan@example.org --name "Alan Turing" --theme compact
	$(BIN)/digest run
	$(BIN)/digest preview --email ada@example.org
	@echo "demo: database var/digest.sqlite3; digests (.eml) in var/outbox/; previews in var/preview/"

test: $(TEST_STAMP) lint
	$(BIN)/pytest

# The edit-and-run loop: everything but the tests marked slow (real processes
# killed at random, 20,000-message runs, the bench smoke test).
test-fast: $(TEST_STAMP) lint
	$(BIN)/pytest -m "not slow"

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Bytecode first, as any installed deployment has it (timings count process start).
bench: $(TEST_STAMP)
	$(BIN)/python -m compileall -q digest
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/selection.py
	$(BIN)/python bench/import_csv.py
	$(BIN)/python bench/learning_cost.py
	$(BIN)/python bench/cadence_cost.py
	$(BIN)/python bench/signed_cost.py
	$(BIN)/python bench/delivery.py --peer --connections 1,2,4
	$(BIN)/python bench/delivery.py --newsletters 3
	$(BIN)/python bench/latency.py

# The learned ranking (with exploration, a model per interest) against the previous
# one and bm25 alone, over five seeds, on five days of real arXiv listings read in
# place (DIGEST_EVAL_DATA, default ../shared/eval/arxiv-days); a few minutes.
eval: $(TEST_STAMP)
	$(BIN)/python bench/eval_ranking.py

# PNGs of each email theme at phone and desktop widths, light and dark,
# in headless Chromium (Debian's chromium package).
screenshots: $(TEST_STAMP)
	$(BIN)/python -m tools.screenshots

clean:
	rm -rf $(VENV) var build dist .pytest_cache .ruff_cache
