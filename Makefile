# Rapport — the two commands a newcomer needs are `make run` and `make test`.
# Both install what they are missing first (`make setup`).

SHELL := /bin/bash
CARGO ?= cargo
REDOCLY := npx --yes @redocly/cli@2.77.0

.PHONY: run test setup contract contract-long contract-strict openapi lint lint-openapi fmt migration clean-test-dbs bench bench-quick bench-engine soak help

help:
	@echo "make run            serve the API on 127.0.0.1:8080 with ./rapport.db (docs at /docs)"
	@echo "make test           run every test, on SQLite and PostgreSQL, then the contract fuzzing"
	@echo "make contract       schemathesis over every operation, on both backends (25 examples each)"
	@echo "make contract-long  the same with 500 examples per operation and a random seed"
	@echo "make openapi        regenerate openapi/openapi.json from the code"
	@echo "make lint           rustfmt --check, clippy (warnings denied), redocly lint"
	@echo "make migration name=add_things   create the SQLite/PostgreSQL migration pair"
	@echo "make bench          benchmark both backends at 1,000,000 contacts; writes bench/RESULTS.md"
	@echo "make bench-quick    the same, small and short, to check the bench (bench/out/)"
	@echo "make bench-engine   engine batch writes (100,000 products) on fresh databases; bench/ENGINE_WRITES.md"
	@echo "make soak           10 minutes of mixed load on PostgreSQL, watching memory and connections"

## Serve with zero configuration: SQLite file rapport.db here, migrations applied.
run:
	$(CARGO) run --bin rapport -- serve

## Every test: unit tests, the API tests against SQLite and PostgreSQL, then contract fuzzing.
test: setup
	$(CARGO) nextest run --workspace
	$(MAKE) --no-print-directory contract

## Contract fuzzing: schemathesis (pinned, installed into target/) over every operation of
## openapi/openapi.json against the live server on SQLite and on PostgreSQL. A fixed seed keeps
## the CI run repeatable; contract-long draws anew each time.
CONTRACT_EXAMPLES ?= 25
contract:
	python3 tests/contract/run.py --examples $(CONTRACT_EXAMPLES) -- --seed 20261202

contract-long:
	python3 tests/contract/run.py --examples 500

## Every check exactly as schemathesis ships it: lists the 422s only a schema-blind rule explains.
contract-strict:
	python3 tests/contract/run.py --examples 50 --config tests/contract/strict.toml

## Install what the tests need and start PostgreSQL when it is installed but stopped.
setup:
	@command -v cargo-nextest >/dev/null 2>&1 || $(CARGO) install cargo-nextest --locked
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "setup: installing chromium (for the /docs browser test)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  ($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null) \
	    || echo "setup: could not install chromium; the browser test will be skipped"; \
	fi
	@if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then \
	  echo "setup: starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start 2>/dev/null || true; \
	  for i in $$(seq 1 20); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done; \
	fi

## Regenerate the committed OpenAPI document (a test fails when it drifts).
openapi:
	$(CARGO) run -q --bin rapport -- openapi > openapi/openapi.json

lint: lint-openapi
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Lint the OpenAPI document with Redocly (recommended rules, see redocly.yaml).
lint-openapi:
	$(REDOCLY) lint openapi/openapi.json --config redocly.yaml

fmt:
	$(CARGO) fmt --all

## Create a migration pair with the next number: make migration name=add_contacts
migration:
	@test -n "$(name)" || { echo "usage: make migration name=add_contacts"; exit 2; }
	@last=$$(ls migrations/sqlite | sed -n 's/^\([0-9]\{4\}\)_.*/\1/p' | sort | tail -1); \
	next=$$(printf "%04d" $$((10#$${last:-0} + 1))); \
	for backend in sqlite postgres; do \
	  file=migrations/$$backend/$${next}_$(name).sql; \
	  printf -- "-- %s (%s): what this changes and why.\n" "$(name)" "$$backend" > $$file; \
	  echo "created $$file"; \
	done

## The benchmark: release build, both backends, 1,000,000 contacts, figures beside their references
## in bench/RESULTS.md (about an hour). BENCH_FLAGS passes flags, e.g. BENCH_FLAGS=--backends=postgres.
## bench.py installs wrk and starts PostgreSQL itself when they are missing.
bench:
	python3 bench/bench.py run $(BENCH_FLAGS)

## A smoke run of the benchmark (20,000 contacts, seconds per scenario); results in bench/out/.
bench-quick:
	python3 bench/bench.py run --quick $(BENCH_FLAGS)

## The object kit engine's batch writes (products) into fresh, un-analyzed databases, beside
## pgbench -N; writes bench/ENGINE_WRITES.md. BENCH_FLAGS="--rows 1000000" for the recorded run.
bench-engine:
	python3 bench/engine_writes.py $(BENCH_FLAGS)

## 10 minutes of mixed load; appends its summary to bench/RESULTS.md. Not part of CI.
soak:
	python3 bench/bench.py soak --minutes $(or $(SOAK_MINUTES),10) $(SOAK_FLAGS)

## Drop test databases left behind by interrupted test runs.
clean-test-dbs:
	psql -h 127.0.0.1 -U postgres -Atc "select 'drop database ' || datname || ' with (force);' from pg_database where datname like 'rapport_test_%'" | psql -h 127.0.0.1 -U postgres -q
