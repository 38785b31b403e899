"""Generates the requests ``test_schemathesis.py`` sends, in a process of its own.

Generation is a third of the fuzzing's work and needs no database, so it runs beside the app on the
other core instead of between its requests. ``python fuzz_cases.py`` reads ``{"schema", "counts",
"skipped"}`` as JSON on stdin. For each count, smallest first, it brings every operation (in the
schema's order) up to that many requests and writes one frame to stdout: an 8-byte big-endian
length, then a pickle of ``{"method", "path", "requests", "exhausted", "repeated"}`` with the
requests new since the last pass (keyword arguments for ``httpx.AsyncClient.request``). So the
backend that fuzzes fewer starts at once, and the rest is made while other tests run.

Each operation gets ``count`` distinct requests, or every distinct request hypothesis finds when its
input space is smaller (``exhausted``). Schemathesis tags each case with an id header; without it
about one case in twenty is the same bytes as an earlier one (``repeated``), and those are sent once.
"""

from __future__ import annotations

import json
import pickle
import struct
import sys
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis.errors import NoSuchExample

BASE_URL = "https://testserver"
CASE_ID_HEADER = "X-Schemathesis-TestCaseId"
FRAME_LENGTH = struct.Struct(">Q")
# An operation that has not given `count` distinct requests in this many times `count` draws has no
# more to give (those here stop at one).
DRAWS_PER_REQUEST = 4


@dataclass
class Distinct:
    """One operation's requests so far, by their bytes."""

    operation: Any
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    exhausted: bool = False
    repeated: int = 0

    def grow(self, count: int) -> list[dict[str, Any]]:
        """Up to ``count`` requests in all; returns the new ones."""
        before = len(self.requests)
        if self.exhausted or before >= count:
            return []

        def enough(case: Any) -> bool:
            if len(self.requests) < count:
                request = case.as_transport_kwargs(base_url=BASE_URL)
                request["headers"].pop(CASE_ID_HEADER, None)
                request.pop("cookies", None)
                # Insertion order is kept: the same fields in another order are different bytes on the wire.
                key = json.dumps(request, default=repr)
                if key in self.requests:
                    self.repeated += 1
                self.requests.setdefault(key, request)
            return len(self.requests) >= count

        settings = hypothesis.settings(
            max_examples=(count - before) * DRAWS_PER_REQUEST,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )
        try:
            hypothesis.find(self.operation.as_strategy(), enough, settings=settings)
        except NoSuchExample:
            self.exhausted = True
        return list(self.requests.values())[before:]


def main() -> None:
    order = json.load(sys.stdin)
    skipped = {(method, path) for method, path in order["skipped"]}
    schema = schemathesis.openapi.from_dict(order["schema"])
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # the frames have stdout to themselves
    operations = [result.ok() for result in schema.get_all_operations()]
    kept = [Distinct(op) for op in operations if (op.method.upper(), op.path) not in skipped]
    for count in sorted(order["counts"]):
        for distinct in kept:
            new = distinct.grow(count)
            frame = pickle.dumps(
                {
                    "method": distinct.operation.method.upper(),
                    "path": distinct.operation.path,
                    "requests": new,
                    "exhausted": distinct.exhausted,
                    "repeated": distinct.repeated,
                }
            )
            out.write(FRAME_LENGTH.pack(len(frame)) + frame)
            out.flush()


if __name__ == "__main__":
    main()
