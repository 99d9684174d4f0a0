# SyncSite: `make run` (whole stack on embedded defaults), `make test`, `make bench`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install run test test-faults bench migrate clean messages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

run: install
	$(BIN)/python -m syncsite.devstack

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-faults: install
	$(BIN)/python -m bench.faults $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# Translations: collect our texts into locale/ru/LC_MESSAGES/django.po (needs GNU gettext), then
# compile django.mo. The .mo is committed, so a machine without gettext runs in Russian as well.
messages: install
	DEBUG=1 $(BIN)/python manage.py makemessages -l ru --ignore=.venv --ignore=var --ignore=tests --ignore=bench
	DEBUG=1 $(BIN)/python manage.py compilemessages -l ru --ignore=.venv

clean:
	rm -rf var/ $(VENV)
