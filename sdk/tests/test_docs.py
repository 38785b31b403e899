"""Every hook and every adapter method is documented in HOOKS.md under its exact signature, and every
hook has a test named ``test_hook_<hook name>``."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from carefront_sdk import PROJECT_NAME, hookspecs
from carefront_sdk.adapters import EHR, Clearinghouse, Notifier, PaymentGateway

SDK = Path(__file__).resolve().parents[1]
REPO = SDK.parent
HOOKS_MD = (SDK / "HOOKS.md").read_text(encoding="utf-8")
PROTOCOLS = (EHR, Clearinghouse, PaymentGateway, Notifier)

HOOK_HEADING = re.compile(r"^### `(?P<name>\w+)(?P<signature>\(.*)`$", re.MULTILINE)
MEMBER_HEADING = re.compile(r"^#### `(?P<protocol>\w+)\.(?P<name>\w+)(?P<signature>[(:].*)`$", re.MULTILINE)
TEST_HOOK = re.compile(r"^\s*(?:async\s+)?def (test_hook_\w+)\(", re.MULTILINE)


class _Written(str):
    """An annotation as written in the source, shown without the quotes inspect would add."""

    def __repr__(self) -> str:
        return str(self)


def signature_as_written(function: Callable[..., Any]) -> str:
    """``(name: Type, ...) -> Return`` with the annotations exactly as the source spells them.

    The SDK modules use ``from __future__ import annotations``, so every annotation is a string.
    """
    signature = inspect.signature(function)
    parameters = [
        parameter.replace(annotation=_Written(parameter.annotation))
        for parameter in signature.parameters.values()
        if parameter.name != "self"
    ]
    return str(signature.replace(parameters=parameters, return_annotation=_Written(signature.return_annotation)))


def hook_specs() -> dict[str, Callable[..., Any]]:
    return {
        name: function
        for name, function in vars(hookspecs).items()
        if callable(function) and hasattr(function, f"{PROJECT_NAME}_spec")
    }


def protocol_members() -> dict[str, str]:
    """``Protocol.member`` to the signature its heading must carry (``(...) -> T`` or ``: T``)."""
    members = {}
    for protocol in PROTOCOLS:
        for name, value in vars(protocol).items():
            if inspect.iscoroutinefunction(value):
                members[f"{protocol.__name__}.{name}"] = signature_as_written(value)
        for name, annotation in protocol.__annotations__.items():
            members[f"{protocol.__name__}.{name}"] = f": {annotation}"
    return members


def hook_sections() -> dict[str, tuple[str, str]]:
    """Hook name to (signature in its heading, text of its section up to the next heading)."""
    headings = list(HOOK_HEADING.finditer(HOOKS_MD))
    sections = {}
    for match in headings:
        rest = HOOKS_MD[match.end() :]
        following = re.search(r"^#{1,4} ", rest, re.MULTILINE)
        sections[match["name"]] = (match["signature"], rest[: following.start() if following else None])
    return sections


DOCUMENTED_HOOKS = hook_sections()
DOCUMENTED_MEMBERS = {f"{m['protocol']}.{m['name']}": m["signature"] for m in MEMBER_HEADING.finditer(HOOKS_MD)}


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_each_hook_is_documented_under_its_signature(hook: str) -> None:
    expected = signature_as_written(hook_specs()[hook])
    assert hook in DOCUMENTED_HOOKS, f"HOOKS.md has no heading: ### `{hook}{expected}`"
    documented, _ = DOCUMENTED_HOOKS[hook]
    assert documented == expected, f"HOOKS.md documents {hook}{documented}, but the code says {hook}{expected}"


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_each_hook_says_when_it_was_added(hook: str) -> None:
    docstring = inspect.getdoc(hook_specs()[hook]) or ""
    added = re.search(r"\.\. versionadded:: (\S+)", docstring)
    assert added, f"the docstring of {hook} has no `.. versionadded::`"
    _, section = DOCUMENTED_HOOKS.get(hook, ("", ""))
    assert f"Added in {added[1]}." in section, f"HOOKS.md does not say {hook} was added in {added[1]}"


def test_every_hook_heading_names_a_hook() -> None:
    stale = sorted(set(DOCUMENTED_HOOKS) - set(hook_specs()))
    assert not stale, f"HOOKS.md documents hooks that do not exist: {stale}"


@pytest.mark.parametrize("member", sorted(protocol_members()))
def test_adapter_member_is_documented_under_its_signature(member: str) -> None:
    expected = protocol_members()[member]
    assert member in DOCUMENTED_MEMBERS, f"HOOKS.md has no heading: #### `{member}{expected}`"
    documented = DOCUMENTED_MEMBERS[member]
    assert documented == expected, f"HOOKS.md documents {member}{documented}, but the code says {member}{expected}"


def test_every_adapter_heading_names_a_member() -> None:
    stale = sorted(set(DOCUMENTED_MEMBERS) - set(protocol_members()))
    assert not stale, f"HOOKS.md documents adapter members that do not exist: {stale}"


def _test_files() -> list[Path]:
    roots = [REPO / "tests", SDK / "tests", *(REPO / "plugins").glob("*/tests")]
    return [path for root in roots if root.is_dir() for path in sorted(root.rglob("test_*.py"))]


def _hook_tests() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in _test_files():
        for name in TEST_HOOK.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, []).append(path)
    return found


HOOK_TESTS = _hook_tests()


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_each_hook_has_a_test(hook: str) -> None:
    searched = "tests/, sdk/tests/ and plugins/*/tests/"
    assert f"test_hook_{hook}" in HOOK_TESTS, f"no test named test_hook_{hook} under {searched}"


def test_every_hook_test_names_a_hook() -> None:
    stray = sorted(name for name in HOOK_TESTS if name.removeprefix("test_hook_") not in hook_specs())
    assert not stray, f"tests named after hooks that do not exist: {stray}"
