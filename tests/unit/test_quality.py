"""The code passes ruff (lint and format), its import-linter contracts and mypy --strict.

Each tool runs from the current virtual environment, in the repository root, with its own
configuration from pyproject.toml; a failure shows the tool's output.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def _passes(*command: str | Path) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shown = " ".join(str(part) for part in command)
        pytest.fail(f"`{shown}` failed ({result.returncode}):\n{result.stdout}{result.stderr}", pytrace=False)


def test_ruff_finds_nothing() -> None:
    _passes(sys.executable, "-m", "ruff", "check", "--no-fix", ".")


def test_code_is_formatted() -> None:
    _passes(sys.executable, "-m", "ruff", "format", "--check", "--diff", ".")


def test_import_contracts_hold() -> None:
    # DESIGN.md's import rules: the SDK stands alone, plugins never import the portal, and back.
    _passes(VENV_BIN / "lint-imports", "--no-cache")


def test_sdk_is_strictly_typed() -> None:
    _passes(sys.executable, "-m", "mypy")
