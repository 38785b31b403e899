"""wapiti3 against the running demo (issue #10): 0 findings beyond tests/scans/wapiti-baseline.toml.

The suite's scan is the short one (``web_scan.QUICK``: about 90 s for both runs, on the 2-core
machine): the crawl and every module run as in ``make scan-web``, each module for a few seconds. The
full scan is ``make scan-web``. Runs once: the demo is SQLite, whatever ``--database`` says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scans import web_scan


def test_the_baseline_covers_a_finding_by_category_path_and_parameter() -> None:
    report = {
        "vulnerabilities": {
            "Cross Site Scripting": [
                {"module": "xss", "method": "POST", "path": "/questions/new", "parameter": "message", "info": "x"}
            ]
        },
        "anomalies": {
            "Internal Server Error": [
                {"module": "sql", "method": "GET", "path": "/slots", "parameter": "", "info": "y"}
            ]
        },
        "additionals": {"HTTP Methods": [{"module": "methods", "method": "GET", "path": "/", "parameter": ""}]},
    }
    xss, error = web_scan.findings_of(report)
    assert (xss.kind, xss.category, xss.parameter) == ("vulnerability", "Cross Site Scripting", "message")
    assert (error.kind, error.path) == ("anomaly", "/slots")
    accepted = [web_scan.Accepted("Cross Site Scripting", "/questions/*", "why", parameter="message")]
    assert web_scan.unexplained([xss, error], accepted) == [error]
    assert web_scan.unexplained([xss], [web_scan.Accepted("Cross Site Scripting", "/questions/*", "why", "other")])
    assert web_scan.unexplained([xss], [web_scan.Accepted("Internal Server Error", "*", "why")]) == [xss]
    assert all(entry.reason.strip() for entry in web_scan.baseline())


@pytest.mark.timeout(600)
def test_wapiti_finds_nothing_beyond_the_baseline(tmp_path: Path) -> None:
    scans, signed_in = web_scan.scan_demo(tmp_path, web_scan.QUICK)
    accepted = web_scan.baseline()
    report = web_scan.summary(scans, accepted)
    anonymous, patient = scans
    # Not a vacuous pass: wapiti crawled the public pages, then a patient's, and attacked them.
    assert anonymous.crawled >= 10, report
    assert patient.crawled > anonymous.crawled, report
    assert all(run.requests > 500 for run in scans), report
    assert signed_in, "the patient's session ended during the scan: the signed-in scan lost its way in\n" + report
    failing = [finding for run in scans for finding in web_scan.unexplained(run.findings, accepted)]
    assert not failing, f"findings not in {web_scan.BASELINE.name} (fix them or explain them there):\n{report}"
