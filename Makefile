# make demo   run the sandbox hospital at http://127.0.0.1:8000
# make test   the whole suite, on SQLite and PostgreSQL 15, browser tests included
# make lint   the checks tests/unit/test_quality.py runs, on their own
# make fuzz   schemathesis and the form fuzzer, 500 examples of every operation and form, on SQLite and PostgreSQL
# make scan-web  wapiti3 against the running demo, anonymous and as a patient, checked against its baseline
# make bench  measure pages against PROMISES.md's budgets (ARGS="--size 100000" for the target scale)
# make fmt    format and fix what ruff can
# ARGS=...    extra arguments for `carefront demo` or pytest, e.g. make test ARGS="--database sqlite -x"

# `python3 -m uv` where pip put uv's script off PATH (see .ci/bootstrap).
UV := $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)
RUN := $(UV) run --frozen --all-packages

.PHONY: demo test lint fmt bench fuzz scan-web

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
	CAREFRONT_FUZZ_EXAMPLES=500 $(RUN) pytest tests/scans/test_schemathesis.py tests/scans/test_forms.py $(ARGS)

scan-web:
	bash .ci/bootstrap
	$(RUN) python -m tests.scans.web_scan $(ARGS)
