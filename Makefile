# The two set-up commands README.md gives: `make app` and `make test`. Both work on a fresh Debian machine with Python 3.11.
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --disable-pip-version-check -q

.PHONY: app test install install-test

install:
	$(PIP) -r requirements.txt

install-test:
	$(PIP) -r requirements-test.txt
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

app: install
	$(PYTHON) -m streamlit run app.py

test: install-test
	$(PYTHON) -m pytest
