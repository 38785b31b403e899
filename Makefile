# make demo   run the sandbox hospital at http://127.0.0.1:8000
# make test   the whole suite, on SQLite and PostgreSQL 15, browser tests included
# make lint   the checks tests/unit/test_quality.py runs, on their own
# make fuzz   schemathesis with 500 examples of every operation, on SQLite and PostgreSQL (~35 min)
# make bench  measure pages against PROMISES.md's budgets (ARGS="--size 100000" for the target scale)
# make fmt    format and fix what ruff can
# ARGS=...    extra arguments for `carefront demo` or pytest, e.g. make test ARGS="--database sqlite -x"

# `python3 -m uv` where pip put uv's script off PATH (see .ci/bootstrap).
UV := $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)
RUN := $(UV) run --frozen --all-packages

.PHONY: demo test lint fmt bench fuzz

demo:
	bash .ci/bootstrap python
	$(RUN) carefront demo $(ARGS)

test:
	bash .ci/bootstrap
	$(RUN) pytest --durations=15 $(ARGS)

lint:
	bash .ci/bootstrap python
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports
	$(RUN) mypy

fmt:
	bash .ci/bootstrap python
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

bench:
	bash .ci/bootstrap bench
	$(RUN) python -m bench $(ARGS)

fuzz:
	bash .ci/bootstrap
	CAREFRONT_FUZZ_EXAMPLES=500 $(RUN) pytest tests/scans/test_schemathesis.py $(ARGS)
