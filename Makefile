# doggo: `make demo` sets up and runs the demo pipeline; `make test` sets up and runs every check.
PYTHON ?= python3
VENV ?= .venv
REQUIREMENTS ?= requirements/cpu.txt
PARAMS ?= params/demo.yaml
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The notebooks' kernel: TensorFlow settings under which their outputs regenerate on any x86-64 CPU.
KERNEL := $(VENV)/share/jupyter/kernels/doggo/kernel.json
NBVAL := --nbval-kernel-name doggo --nbval-sanitize-with notebooks/nbval_sanitize.cfg --nbval-cell-timeout 900

.PHONY: setup browser demo run test lint format notebooks nbval book clean-data

$(STAMP): $(REQUIREMENTS) requirements/constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(REQUIREMENTS) -c requirements/constraints.txt -e .
	touch $(STAMP)

$(KERNEL): $(STAMP) helpers/kernel.py
	$(BIN)/python -m helpers.kernel install

setup: $(STAMP) $(KERNEL)

BOOK_STAMP := $(VENV)/.book-installed
BOOK_DIR ?= _build/book

$(BOOK_STAMP): $(STAMP) requirements/book.txt requirements/constraints.txt
	$(BIN)/python -m pip install --quiet -r requirements/book.txt -c requirements/constraints.txt
	touch $(BOOK_STAMP)

# The course as a static site in $(BOOK_DIR) (open index.html): the notebooks with their committed
# outputs (never executed), the README as front page, offline. Warnings (a broken link) fail it.
book: $(BOOK_STAMP)
	$(BIN)/python -m sphinx -q -W --keep-going -b html -c book -d $(BOOK_DIR)/.doctrees . $(BOOK_DIR)

# The app's browser test drives Debian's chromium through chromedriver (no browser downloads).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "chromium/chromedriver missing and not installable here: the browser test will skip"

demo: setup
	$(BIN)/python -m helpers.pipeline params/demo.yaml

run: setup
	$(BIN)/python -m helpers.pipeline $(PARAMS)

notebooks: setup  ## re-execute the demo, then its solutions/, and write their outputs (to commit)
	rm -rf data/demo runs/demo
	$(BIN)/python -m helpers.pipeline params/demo.yaml --update-notebooks
	$(BIN)/jupytext --sync notebooks/*.ipynb solutions/*.ipynb
	$(BIN)/python -m helpers.kernel record

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: setup browser lint $(BOOK_STAMP)
	$(BIN)/python -m pytest tests/code tests/model tests/app
	$(MAKE) nbval
	$(BIN)/python -m pytest tests/book
	DOGGO_REQUIRE_DATA=1 $(BIN)/python -m pytest tests/data
	$(MAKE) docker-test

# Re-runs the demo from scratch, as the committed outputs were made, in the doggo kernel. Outputs are
# compared exactly where TensorFlow computes as where they were made (x86-64 Linux, AVX2, the
# pinned tensorflow-cpu, and the numerics fingerprint in notebooks/numerics.json); elsewhere every
# cell still runs and the notebooks' own checks must pass (nbval's lax mode).
# pytest runs its arguments in the order given: the lessons first, then the solutions, which
# read the lessons' outputs (data/demo, runs/demo/models) and write only to runs/demo/solutions.
nbval: setup
	rm -rf data/demo runs/demo
	if $(BIN)/python -m helpers.kernel check; then mode=--nbval; else mode=--nbval-lax; fi; \
	  $(BIN)/python -m pytest $$mode $(NBVAL) notebooks/ solutions/

clean-data:
	rm -rf data/demo runs/demo

# Builds the app's image, runs it hardened as compose.yaml does, checks health and real answers
# (scripts/docker_test.sh). Starts the engine and makes the base image locally where needed;
# without an engine it skips, unless CI=true.
.PHONY: docker-test
docker-test: setup
	PYTHON=$(BIN)/python scripts/docker_test.sh
