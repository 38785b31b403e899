"""Bandit over the shipped code at medium and high severity: 0 findings beyond the justified baseline."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASELINE = Path(__file__).with_name("bandit-baseline.toml")
SCANNED = ["portal", "sdk/src", *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("plugins/*/src"))]


def bandit_findings() -> Counter[tuple[str, str]]:
    """(file, test id) -> how many medium- or high-severity findings bandit reports there."""
    command = [sys.executable, "-m", "bandit", "--quiet", "--recursive", "--severity-level", "medium"]
    result = subprocess.run(
        [*command, "--format", "json", *SCANNED], cwd=ROOT, capture_output=True, text=True, check=False
    )
    report = json.loads(result.stdout)
    assert not report["errors"], report["errors"]
    return Counter((finding["filename"], finding["test_id"]) for finding in report["results"])


def test_bandit_finds_nothing_beyond_the_baseline() -> None:
    accepted = tomllib.loads(BASELINE.read_text())["accepted"]
    assert all(entry["why"].strip() for entry in accepted), "every accepted finding says why"
    allowed = {(entry["file"], entry["test"]): entry["count"] for entry in accepted}
    found = bandit_findings()
    unexplained = {key: count for key, count in found.items() if count > allowed.get(key, 0)}
    stale = {key: count for key, count in allowed.items() if found.get(key, 0) < count}
    assert not unexplained, f"bandit findings not in {BASELINE.name} (fix them or justify them): {unexplained}"
    assert not stale, f"{BASELINE.name} accepts findings that are gone; lower or remove: {stale}"
