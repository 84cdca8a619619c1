# One entry point for people and CI. `make setup` once, then `make run` / `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup lock localstack run demo test test-localstack test-unit lint fmt bench load mutate audit package migrate key clean

STAMP := $(VENV)/.installed
# One lock for Python 3.11-3.13 on Linux and macOS: markers pick per platform and version.
COMPILE := $(BIN)/uv pip compile --quiet --universal --python-version 3.11

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps -r requirements-dev.txt
	$(BIN)/pip check
	touch $(STAMP)

setup: $(STAMP)  ## install the pinned runtime and dev dependencies into .venv

# After editing requirements*.in; `make lock LOCK_ARGS=--upgrade` moves every pin to the newest.
lock: setup  ## pin requirements*.in into requirements*.txt (uv, from the pins)
	$(COMPILE) $(LOCK_ARGS) requirements.in -o requirements.txt
	$(COMPILE) $(LOCK_ARGS) -c requirements.txt requirements-dev.in -o requirements-dev.txt
	$(COMPILE) $(LOCK_ARGS) requirements-localstack.in -o requirements-localstack.txt

# LocalStack (host mode, no Docker) in a virtual environment of its own: its pins stay there.
LOCALSTACK_VENV ?= .venv-localstack
LOCALSTACK_STAMP := $(LOCALSTACK_VENV)/.installed
$(LOCALSTACK_STAMP): requirements-localstack.txt
	test -x $(LOCALSTACK_VENV)/bin/python || $(PY) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/pip install --quiet --no-deps -r requirements-localstack.txt
	touch $(LOCALSTACK_STAMP)

localstack: $(LOCALSTACK_STAMP)  ## install LocalStack into .venv-localstack (~2 min, ~500 MB)

# SQS=localstack: against LocalStack in host mode instead of the embedded moto server.
SQS ?= $(or $(LOCALAWS_SQS),moto)
run: setup $(if $(filter localstack,$(SQS)),$(LOCALSTACK_STAMP))  ## the whole engine on :3000 (HTTP, WebSocket, worker); no Docker needed; SQS=localstack
	LOCALSTACK_VENV=$(abspath $(LOCALSTACK_VENV)) $(BIN)/python -m localaws --sqs $(SQS)

demo: setup  ## submit 5 orders to a running engine and watch them live
	$(BIN)/python -m localaws.demo

test: setup  ## unit, property and integration tests (needs Postgres and Redis, see README)
	$(BIN)/python -m pytest

# The suites that talk to SQS, against LocalStack (each SQS server a test starts is one);
# LOCALSTACK_TESTS narrows them, as .ci/run does.
LOCALSTACK_TESTS ?= tests/integration tests/resilience tests/runtime
test-localstack: setup localstack  ## the SQS-facing suites against LocalStack in host mode (not moto)
	LOCALAWS_SQS=localstack LOCALSTACK_VENV=$(abspath $(LOCALSTACK_VENV)) $(BIN)/python -m pytest $(LOCALSTACK_TESTS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

fmt: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup  ## benchmarks; results in bench/results/
	$(BIN)/python -m bench

load: setup  ## 1000 orders/minute for 60 s, then Postgres checked (not in CI); LOAD_ARGS="--seconds 300"
	$(BIN)/python -m bench.load $(LOAD_ARGS)

mutate: setup  ## mutation testing of tokens, dex/, request models (~50 min; not in CI); MUTANTS="chalicelib.tokens*"
	$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/python -m tests.mutation_report

# Plants each bug of tests/hand_audit.py's list in the working tree, one at a time, and puts it back.
audit: setup  ## hand mutation audit of store, worker, limits, reaper, keys, WebSocket, stats, api (~7 min; not in CI); AUDIT_ARGS="--only quotes"
	$(BIN)/python -m tests.hand_audit $(AUDIT_ARGS)

package: setup  ## the deployable CloudFormation template + code in build/dev/ (docs/DEPLOY.md)
	$(BIN)/python -m infra package --stage dev --out build/dev

migrate: setup  ## apply database migrations to DATABASE_URL
	$(BIN)/python -m chalicelib migrate

key: setup  ## a new API key for client NAME (shown once): make key NAME=alice
	$(BIN)/python -m chalicelib keys create $(or $(NAME),$(error NAME=<client> is required))

clean:
	rm -rf $(VENV) .venv-3.13 $(LOCALSTACK_VENV) mutants .data .pytest_cache .ruff_cache .hypothesis build
