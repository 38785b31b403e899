"""Semgrep with this codebase's own rules (tests/scans/semgrep/), offline: 0 findings.

The rules are first run over known-bad samples, so a rule that silently stopped matching (a semgrep
upgrade, a typo in a pattern) fails here instead of passing the real tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = Path(__file__).with_name("semgrep")
EVERYWHERE = RULES / "carefront.yml"
CONTROLLERS = RULES / "controllers.yml"
SHIPPED = ["portal", "sdk/src", "templates", *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("plugins/*/src"))]

BAD_CONTROLLER = """
import httpx
from stripe import StripeError
from litestar import Controller, get, post


class Statements(Controller):
    @get("/")
    async def show(self) -> None:
        try:
            pass
        except (ValueError, StripeError) as error:
            raise RuntimeError() from error


@post("/pay")
async def pay(request) -> None:
    if request.headers.get("HX-Request"):
        raise httpx.TimeoutException("slow")
    print("paid")
"""
BAD_TEMPLATE = (
    "<p>{{ patient.name | safe }}</p>\n{{ csrf_input | safe }}\n{% autoescape false %}{{ x }}{% endautoescape %}\n"
)


def semgrep(config: Path, targets: list[str], cwd: Path) -> list[tuple[str, str, int]]:
    """(rule, path, line) of each finding; semgrep errors fail the test."""
    command = [Path(sys.executable).with_name("semgrep"), "scan", "--config", config, "--json", "--metrics=off"]
    command += ["--disable-version-check", "--no-git-ignore", "--quiet", *targets]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=240)
    report = json.loads(result.stdout)
    assert not report["errors"], report["errors"]
    return sorted({(r["check_id"].rsplit(".", 1)[-1], r["path"], r["start"]["line"]) for r in report["results"]})


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("semgrep-samples")
    (folder / "portal").mkdir()
    (folder / "portal" / "pages.py").write_text(BAD_CONTROLLER)
    (folder / "templates").mkdir()
    (folder / "templates" / "page.html").write_text(BAD_TEMPLATE)
    return folder


def test_rules_catch_what_they_are_for(samples: Path) -> None:
    everywhere = semgrep(EVERYWHERE, ["portal", "templates"], samples)
    assert everywhere == [
        ("carefront-no-print", "portal/pages.py", 20),
        ("carefront-no-raw-hx-request-header", "portal/pages.py", 18),
        ("carefront-no-safe-filter-in-templates", "templates/page.html", 1),
        ("carefront-no-safe-filter-in-templates", "templates/page.html", 3),
    ]
    # The try that catches StripeError (line 10) and the raised httpx error (19); not the
    # `raise RuntimeError() from error` of line 13, which names no vendor.
    assert {line for _, _, line in semgrep(CONTROLLERS, ["portal"], samples)} == {10, 19}


def test_the_shipped_code_keeps_the_rules() -> None:
    findings = semgrep(EVERYWHERE, SHIPPED, ROOT) + semgrep(CONTROLLERS, ["portal"], ROOT)
    assert findings == []
