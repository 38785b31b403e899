"""``python -m bench.render``: how long the statement template takes to render 200 charge lines.

PROMISES.md: "rendering 200 lines takes ≤ 2 ms of the request". The lines are the sandbox
inpatient's real stay (the demo persona with the long statement), read from the sandbox EHR,
explained with the page's own dictionary and sums (``portal.billing.explained``) and rendered by the
portal's own Jinja environment with the template the page and its htmx partial use
(``billing/visit_lines.html``), in each of the hospital's languages: the first render of a copy of
the statement, and the renders after it, which the fragment cache answers (portal/web/fragments.py).
Printed as one JSON line: the median and 95th percentile of ``--repeats`` renders of each, per
language, and the slowest language's medians.
Times are the rendering thread's CPU time (wall time is printed beside it): rendering does no I/O,
and CPU time does not count the moments another process held the core.

Run by ``python -m bench`` in the environment of a benchmark run (database migrated, demo accounts
open).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import carefront_sandbox.hooks
from carefront_sdk import codec
from jinja2 import Environment, Template

from portal import database
from portal.app import create_app
from portal.billing.balances import hospital_today, statement_due
from portal.billing.dictionary import dictionary_for
from portal.billing.explained import explain
from portal.billing.pages import VISIT_LINES
from portal.i18n import _current
from portal.identity.demo_accounts import open_demo_accounts
from portal.plugin_host import PluginHost
from portal.settings import Settings
from portal.snapshots.service import Read, fingerprint

LONG_STAY = "200 lines"
"""The words in the label of the demo persona whose statement has the long stay."""


async def measure(lines: int, repeats: int) -> dict[str, Any]:
    settings = Settings.load()
    host = PluginHost.load(settings)
    app = create_app(settings, plugins=[("sandbox", carefront_sandbox.hooks)])
    environment: Environment = app.template_engine.engine  # type: ignore[union-attr]
    i18n = app.state["i18n"]
    engine = await database.connect(settings)
    try:
        personas = await open_demo_accounts(host, host.clock())
        patient_id = next(p.persona.patient_id for p in personas if LONG_STAY in p.persona.label)
        assert patient_id is not None
        summaries = await host.ehr.list_statements(patient_id)
        statements = [await host.ehr.read_statement(summary.id) for summary in summaries]
        statement = max(statements, key=lambda found: len(found.lines))
        read_at = host.clock()
        seen = fingerprint(codec.dumps(statement))
        today = hospital_today(read_at, settings.hospital.time_zone)
        due = await statement_due(patient_id, statement.summary, today)
    finally:
        await database.disconnect(engine)
    template = environment.get_template(VISIT_LINES)
    by_language: dict[str, dict[str, dict[str, float]]] = {}
    for language in i18n.languages:
        token = _current.set(language)
        try:
            dictionary = dictionary_for(host, statement.lines, language, i18n.gettext)
            shown = explain(statement, dictionary, due, (), expanded=None)
            longest = max(shown.visits, key=lambda group: len(group.lines))
            if len(longest.lines) < lines:
                raise SystemExit(f"the longest visit has {len(longest.lines)} lines, fewer than {lines}")
            group = replace(longest, lines=longest.lines[:lines])
            context = {"statement": shown, "group": group, "pdf": False, "swapped": True,
                       "question_url": "/questions/new"}  # fmt: skip
            by_language[language] = {
                # A statement no render has seen yet: every line is rendered.
                "first": _timed(template, context, lambda i: Read(statement, read_at, f"unseen-{i}"), repeats),
                # The same copy again, as the page's htmx partials and the next visits are.
                "again": _timed(template, context, lambda i: Read(statement, read_at, seen), repeats),
            }
        finally:
            _current.reset(token)
    return {
        "lines": lines,
        "repeats": repeats,
        "languages": by_language,
        "first_median_ms": max(figures["first"]["median_ms"] for figures in by_language.values()),
        "again_median_ms": max(figures["again"]["median_ms"] for figures in by_language.values()),
    }


def _timed(
    template: Template, context: dict[str, Any], read: Callable[[int], Read[Any]], repeats: int
) -> dict[str, float]:
    """Median and 95th percentile of ``repeats`` renders, in CPU and wall milliseconds."""
    template.render(**context, read=read(-1))  # compiled and warm, as in a serving process
    cpu, wall = [], []
    for i in range(repeats):
        page = {**context, "read": read(i)}
        started, started_cpu = time.perf_counter(), time.thread_time()
        template.render(**page)
        cpu.append((time.thread_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": round(statistics.median(cpu), 3),
        "p95_ms": round(sorted(cpu)[int(len(cpu) * 0.95) - 1], 3),
        "wall_median_ms": round(statistics.median(wall), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.render")
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    sys.stdout.write(json.dumps(asyncio.run(measure(args.lines, args.repeats))) + "\n")


if __name__ == "__main__":
    main()
