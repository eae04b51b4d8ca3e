# The two set-up commands README.md gives: `make app` and `make test`. Both work on a fresh Debian machine with Python 3.11
# and install the whole dependency tree from the lock files, every package at an exact version with its hashes, then
# this package (pyproject.toml) in editable mode on top, its dependencies untouched: the locks alone decide versions,
# and the build uses the lock's setuptools rather than fetching one.
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --disable-pip-version-check -q
INSTALL_SELF = $(PIP) --no-deps --no-build-isolation -e .
# pip-compile, in a throwaway environment, so the lock is made the same way on every machine.
LOCK_TOOL = pip-tools==7.6.2
LOCK_ENV = /tmp/fclab-lock-env
COMPILE = $(LOCK_ENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links \
	--no-emit-index-url

.PHONY: app test install install-test lock

install:
	$(PIP) --require-hashes -r requirements.lock
	$(INSTALL_SELF)

install-test:
	$(PIP) --require-hashes -r requirements-test.lock
	$(INSTALL_SELF)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# Through the serve verb: on an address other than loopback without FCLAB_PASSWORD it refuses before anything binds.
# Streamlit's options go in ARGS, e.g. make app ARGS='--server.port 8502'.
app: install
	$(PYTHON) -m dashboard_lib serve $(ARGS)

test: install-test
	$(PYTHON) -m pytest

# After editing requirements.txt or requirements-test.txt: resolve both anew (the test lock within the app's).
lock:
	rm -rf $(LOCK_ENV) && $(PYTHON) -m venv $(LOCK_ENV) && $(LOCK_ENV)/bin/pip install -q $(LOCK_TOOL)
	$(COMPILE) --output-file requirements.lock requirements.txt
	$(COMPILE) --constraint requirements.lock --output-file requirements-test.lock requirements-test.txt
	rm -rf $(LOCK_ENV)
