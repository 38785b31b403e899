"""The budgets of PROMISES.md, checked against one benchmark report: pass, falls short, or not measured."""

from __future__ import annotations

from typing import Any

FIRST_LOAD_LIMIT = 30 * 1024
PARTIAL_LIMIT = 10 * 1024
RATIO_FLOOR = 0.80
MIXED_P95_MS = 250
RENDER_LIMIT_MS = 2.0
LIGHTHOUSE_FLOOR = {"performance": 98, "accessibility": 100, "best-practices": 100}


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "pass" if ok else "falls short"


def check_budgets(report: dict[str, Any]) -> list[dict[str, str]]:
    checks: list[dict[str, str]] = []
    for backend in report["backends"]:
        name = backend["database"]
        measured = [p for p in backend["pages"] if not p["skipped"] and p["bytes_compressed"] is not None]
        full = [p for p in measured if "htmx" not in p["name"]]
        partial = [p for p in measured if "htmx" in p["name"]]
        if full:
            worst = max(full, key=lambda p: p["bytes_compressed"])
            checks.append({"budget": f"{name}: first load ≤ 30 KiB compressed",
                           "measured": f"largest: {worst['name']}, {worst['bytes_compressed'] / 1024:.1f} KiB",
                           "verdict": _verdict(worst["bytes_compressed"] <= FIRST_LOAD_LIMIT)})  # fmt: skip
        if partial:
            worst = max(partial, key=lambda p: p["bytes_compressed"])
            checks.append({"budget": f"{name}: htmx partial ≤ 10 KiB compressed",
                           "measured": f"largest: {worst['name']}, {worst['bytes_compressed'] / 1024:.1f} KiB",
                           "verdict": _verdict(worst["bytes_compressed"] <= PARTIAL_LIMIT)})  # fmt: skip
        long_statement = next((p for p in backend["pages"] if p["name"] == "statement, 200 lines"), None)
        ratio = long_statement["ratio_1"] if long_statement else None
        checks.append({"budget": f"{name}: 200-line statement ≥ 80 % of in-memory req/s",
                       "measured": "-" if ratio is None else f"{ratio:.0%}",
                       "verdict": _verdict(None if ratio is None else ratio >= RATIO_FLOOR)})  # fmt: skip
        if name == "postgres":
            mixed = backend["mixed"]
            checks.append({"budget": f"mixed journeys, 200 users on 2 workers (reading {report['think_ms']} ms a page): no error, p95 < 250 ms",
                           "measured": "-" if mixed is None else f"{mixed['errors']} errors, p95 {mixed['p95_ms']} ms",
                           "verdict": _verdict(None if mixed is None else mixed["errors"] == 0 and mixed["p95_ms"] < MIXED_P95_MS)})  # fmt: skip
    for page in ("dashboard", "statement, 200 lines"):
        scores = report["lighthouse"].get(page)
        ok = None if not isinstance(scores, dict) else all(scores.get(k, 0) >= v for k, v in LIGHTHOUSE_FLOOR.items())
        shown = (
            scores if isinstance(scores, str) or scores is None else ", ".join(f"{k} {v}" for k, v in scores.items())
        )
        checks.append({"budget": f"Lighthouse mobile, {page}: performance ≥ 98, accessibility 100, best practices 100",
                       "measured": shown or "-", "verdict": _verdict(ok)})  # fmt: skip
    for backend in report["backends"]:
        render = backend.get("render")
        if render:
            # The lines a request renders come from the fragment cache once a process has rendered
            # that statement (portal/web/fragments.py); the first render is shown beside it.
            checks.append({"budget": f"{backend['database']}: rendering 200 lines ≤ 2 ms of the request",
                           "measured": f"{render['again_median_ms']} ms (the first render of a statement: "
                                       f"{render['first_median_ms']} ms)",
                           "verdict": _verdict(render["again_median_ms"] <= RENDER_LIMIT_MS)})  # fmt: skip
    return checks
