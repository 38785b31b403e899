"""The benchmark harness: ``python -m bench`` (or ``make bench``). See README.md, "Measurements"."""
