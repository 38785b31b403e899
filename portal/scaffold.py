"""``carefront plugin new``: write a plugin distribution with a working adapter and its contract tests.

The templates are plain files under ``portal/scaffold/``: ``common/`` for what every plugin has,
``<port>/`` for the hooks, the in-memory adapter, its contract test and an example of its settings.
Placeholders are :class:`string.Template` ones (``$name``; ``$$`` is a literal dollar sign).
"""

from __future__ import annotations

import importlib.util
import re
from importlib import metadata
from pathlib import Path
from string import Template

from carefront_sdk import PROJECT_NAME
from carefront_sdk.adapters import Port

TEMPLATES = Path(__file__).with_suffix("")
SDK_REQUIREMENT = "carefront-sdk>=0.1,<1"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED = frozenset({"carefront", "portal", "sdk", "testing"})
"""Names that would read as part of Carefront itself."""

_CLASS_SUFFIX = {
    Port.EHR: "EHR",
    Port.CLEARINGHOUSE: "Clearinghouse",
    Port.GATEWAY: "Gateway",
    Port.NOTIFIER: "Notifier",
}
_CONTRACT_SUITE = {
    Port.EHR: "EHRContract",
    Port.CLEARINGHOUSE: "ClearinghouseContract",
    Port.GATEWAY: "GatewayContract",
    Port.NOTIFIER: "NotifierContract",
}


def check_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` can name a new plugin, its package and its entry point."""
    if not NAME.match(name) or name.endswith("_") or "__" in name:
        raise ValueError(
            f"{name!r} is not a plugin name: use lowercase letters, digits and single underscores, "
            "starting with a letter (at most 40 characters), e.g. acme_ehr"
        )
    if name in RESERVED:
        raise ValueError(f"{name!r} is reserved for Carefront itself; name the plugin after your vendor or hospital")
    if importlib.util.find_spec(f"carefront_{name}") is not None:
        raise ValueError(f"a module carefront_{name} is already installed; choose another name")
    if any(entry_point.name == name for entry_point in metadata.entry_points(group=PROJECT_NAME)):
        raise ValueError(f"a plugin named {name!r} is already installed; choose another name")


def create_plugin(name: str, port: Port, destination: Path) -> Path:
    """Write the distribution ``carefront-<name>`` into ``destination`` and return its folder.

    It holds a pyproject (hatchling, the ``carefront`` entry point, a dependency on carefront-sdk),
    the package ``carefront_<name>`` with its hooks and a small in-memory adapter for ``port`` that
    passes the contract suite as generated, the contract test, and a README. Raises ``ValueError`` for
    a name that cannot be used or a folder that already exists; nothing is written then.
    """
    check_name(name)
    port = Port(port)
    root = destination / f"carefront-{name.replace('_', '-')}"
    if root.exists():
        raise ValueError(f"{root} already exists; choose another name or --directory")
    package = f"carefront_{name}"
    title = " ".join(part.capitalize() for part in name.split("_"))
    # "acme_ehr" gives AcmeEHR, not AcmeEhrEHR.
    stem = name.removesuffix(f"_{port.value}")
    class_name = "".join(part.capitalize() for part in stem.split("_")) + _CLASS_SUFFIX[port]
    values = {
        "name": name,
        "upper_name": name.upper(),
        "title": title,
        "package": package,
        "distribution": root.name,
        "port": port.value,
        "class_name": class_name,
        "contract_suite": _CONTRACT_SUITE[port],
        "sdk_requirement": SDK_REQUIREMENT,
    }
    values["config_example"] = _render(port.value, "settings.toml", values).strip()
    files = {
        "pyproject.toml": _render("common", "pyproject.toml", values),
        "README.md": _render("common", "README.md", values),
        f"src/{package}/__init__.py": _render("common", "__init__.py", values),
        f"src/{package}/hooks.py": _render(port.value, "hooks.py", values),
        f"src/{package}/adapter.py": _render(port.value, "adapter.py", values),
        "tests/test_contract.py": _render(port.value, "test_contract.py", values),
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _render(folder: str, file_name: str, values: dict[str, str]) -> str:
    template = (TEMPLATES / folder / f"{file_name}.tmpl").read_text(encoding="utf-8")
    return Template(template).substitute(values)
