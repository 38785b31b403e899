"""``carefront plugin new`` writes a plugin that installs, registers its adapter and passes its contract.

Each generated plugin's own tests run in a subprocess of this interpreter (which has carefront-sdk
and its pytest plugin installed) with the generated ``src`` on the path, as after ``pip install -e``.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from carefront_sdk import testing
from carefront_sdk.adapters import Port

from portal.plugin_host import PluginHost
from portal.scaffold import create_plugin
from portal.settings import Settings

SUITES = {
    Port.EHR: testing.EHRContract,
    Port.CLEARINGHOUSE: testing.ClearinghouseContract,
    Port.GATEWAY: testing.GatewayContract,
    Port.NOTIFIER: testing.NotifierContract,
}


def _run_pytest(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")])}
    # The generated tests rely on pytest plugins loading from entry points (carefront's kit, pytest-asyncio).
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("port", list(Port))
def test_generated_plugin_passes_its_contract_suite(port: Port, tmp_path: Path) -> None:
    root = create_plugin("acme", port, tmp_path)
    assert root == tmp_path / "carefront-acme"
    result = _run_pytest(root)
    assert result.returncode == 0, result.stdout + result.stderr
    contract_tests = [name for name, _ in inspect.getmembers(SUITES[port]) if name.startswith("test_")]
    # Every test of the suite, plus the generated check of the hooks against the specs; a test that
    # checks something the scaffold does not have (a gateway's element page) skips, saying so.
    counts = {word: int(number) for number, word in re.findall(r"(\d+) (passed|skipped)", result.stdout)}
    assert counts.get("passed", 0) + counts.get("skipped", 0) == len(contract_tests) + 1, result.stdout
    assert counts.get("skipped", 0) == (1 if port is Port.GATEWAY else 0), result.stdout
    assert re.search(r"\b(failed|error)", result.stdout) is None, result.stdout


def test_generated_files(tmp_path: Path) -> None:
    root = create_plugin("acme_ehr", Port.EHR, tmp_path)
    assert root.name == "carefront-acme-ehr"
    written = sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
    assert written == [
        "README.md",
        "pyproject.toml",
        "src/carefront_acme_ehr/__init__.py",
        "src/carefront_acme_ehr/adapter.py",
        "src/carefront_acme_ehr/hooks.py",
        "tests/test_contract.py",
    ]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "carefront-acme-ehr"
    assert project["project"]["dependencies"] == ["carefront-sdk>=0.1,<1"]
    assert project["project"]["entry-points"]["carefront"] == {"acme_ehr": "carefront_acme_ehr.hooks"}
    assert project["build-system"]["build-backend"] == "hatchling.build"
    adapter = (root / "src/carefront_acme_ehr/adapter.py").read_text()
    assert "class AcmeEHR:" in adapter
    readme = (root / "README.md").read_text()
    assert '[ports]\nehr = "acme_ehr"' in readme
    assert "$" not in readme.replace('"$env"', "")


def _uv() -> list[str]:
    if shutil.which("uv"):
        return ["uv"]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    pytest.skip("uv is not installed")


def test_wheel_declares_the_entry_point(tmp_path: Path) -> None:
    root = create_plugin("acme", Port.GATEWAY, tmp_path / "src")
    subprocess.run(
        [*_uv(), "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name == "carefront_acme-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read("carefront_acme-0.1.0.dist-info/entry_points.txt").decode()
        metadata = archive.read("carefront_acme-0.1.0.dist-info/METADATA").decode()
        assert "carefront_acme/adapter.py" in archive.namelist()
    assert "[carefront]\nacme = carefront_acme.hooks" in entry_points
    assert "Requires-Dist: carefront-sdk<1,>=0.1" in metadata


@pytest.mark.parametrize(
    "name",
    ["Acme", "1acme", "acme-ehr", "acme ehr", "acme__ehr", "acme_", "", "a" * 41, "portal", "sdk", "carefront"],
)
def test_a_bad_name_is_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"name|reserved"):
        create_plugin(name, Port.EHR, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_name_of_an_installed_plugin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="already installed"):
        create_plugin("sandbox", Port.EHR, tmp_path)


def test_an_existing_folder_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "carefront-acme").mkdir()
    (tmp_path / "carefront-acme" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists"):
        create_plugin("acme", Port.NOTIFIER, tmp_path)
    assert [path.name for path in (tmp_path / "carefront-acme").iterdir()] == ["notes.txt"]


def test_the_portal_loads_an_installed_scaffold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Build the generated plugin, install its wheel into a folder on the path, and let the portal find it."""
    root = create_plugin("acme", Port.NOTIFIER, tmp_path / "src")
    subprocess.run(
        [*_uv(), "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    site = tmp_path / "site-packages"
    # A wheel is a zip laid out as installed: unpacking it is what `pip install --target` does.
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()

    document = {"plugins": {"allow": ["sandbox", "acme"]}, "ports": {"notifier": "acme"}}
    environ = {"CAREFRONT_SECRET_KEY": "s" * 40, "CAREFRONT_DATA_DIR": str(tmp_path / "var")}
    host = PluginHost.load(Settings.from_document(document, environ))
    acme = next(info for info in host.plugins if info.name == "acme")
    assert acme.distribution == "carefront-acme"
    assert acme.version == "0.1.0"
    assert host.chosen()[Port.NOTIFIER].plugin == "acme"
    assert host.chosen()[Port.EHR].plugin == "sandbox"
