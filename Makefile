# Two entry points: `make demo` and `make test`. Both create .venv from the project's own files when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# One pytest-xdist worker per core; each file's tests stay on one worker, so a module's fixture (a trained run, a
# fresh venv) is built once. PYTEST_WORKERS=0 runs the suite in this process.
PYTEST_WORKERS ?= auto

.PHONY: demo demo-full test lint bench dist clean-venv

$(STAMP): constraints.txt requirements-dev.txt $(wildcard packages/*/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e ./packages/core
	@touch $(STAMP)

# Each package's demo steps are in its registry entry (package.py); each resumes its own run directory, so
# running `make demo` again continues instead of failing.
demo: $(STAMP)
	$(VENV)/bin/gencore demo-all

# The commands behind the figures of each package's README, at their sizes (hours; `gencore demo-all --list --full`
# prints them with each package's estimate); the page is runs/demo-full/index.html.
demo-full: $(STAMP)
	$(VENV)/bin/gencore demo-all --full

test: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check packages tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/trainer_overhead.py
	$(PY) benchmarks/perlin.py

# Publishable sdists and wheels of every package into dist/: release metadata (gencore>=X, not a file:// path to
# this clone; see packages/*/hatch_build.py), checked by twine check --strict. Only earlier builds of these
# packages are replaced; anything else in dist/ is left alone and not checked. GENCORE_README_URL (the address that
# serves the repository's files at the released commit) makes the READMEs' pictures absolute for the index page.
dist: $(STAMP)
	@set -e; built=""; for p in packages/*/; do \
	  n=$$(grep -m1 '^name = ' $$p/pyproject.toml | cut -d'"' -f2 | tr '-' '_'); \
	  rm -f dist/$$n-*.whl dist/$$n-*.tar.gz; \
	  GENCORE_RELEASE=1 $(PY) -m build --no-isolation --outdir dist $$p; \
	  built="$$built $$(ls dist/$$n-*.whl dist/$$n-*.tar.gz)"; \
	done; $(PY) -m twine check --strict $$built

clean-venv:
	rm -rf $(VENV)
