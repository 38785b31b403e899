"""Declared configuration for adapters, with secrets given by reference.

A plugin lists the fields its adapter reads; the hospital writes values in ``carefront.toml``
under ``[adapters.<name>]``. A value may be a reference resolved at start-up, so secrets never sit
in the file::

    [adapters.stripe]
    secret_key = { "$env" = "STRIPE_SECRET_KEY" }

A missing or wrong value raises :class:`~carefront_sdk.errors.ConfigError` naming the plugin and
the field, and the portal refuses to start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from carefront_sdk.errors import ConfigError

__all__ = ["REQUIRED", "ConfigField", "resolve_config"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of a field that has no default: the hospital must set it."""

_KINDS: dict[type, str] = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    list: "a list",
}


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One setting an adapter reads. ``kind`` is str, int, float, bool or list."""

    name: str
    kind: type
    description: str
    default: Any = REQUIRED
    secret: bool = False
    """Secrets are shown masked by ``carefront plugins`` and should be given by ``$env`` reference."""
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise TypeError(f"ConfigField {self.name!r}: kind must be one of {sorted(k.__name__ for k in _KINDS)}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def _dereference(plugin: str, field: str, value: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(value, Mapping) and set(value) == {"$env"}:
        name = value["$env"]
        if name not in environ:
            raise ConfigError(plugin, field, f"environment variable {name} is not set")
        return environ[name]
    if isinstance(value, Mapping) and set(value) == {"$file"}:
        try:
            with open(value["$file"], encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as error:
            raise ConfigError(plugin, field, f"cannot read file {value['$file']}: {error.strerror}") from None
    return value


def _coerce(plugin: str, spec: ConfigField, value: Any) -> Any:
    expected = _KINDS[spec.kind]
    # Values from $env arrive as strings; accept the usual spellings of the declared kind.
    if isinstance(value, str) and spec.kind is not str:
        text = value.strip()
        try:
            if spec.kind is bool:
                lowered = text.lower()
                if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(text)
                value = lowered in {"true", "1", "yes"}
            elif spec.kind is int:
                value = int(text)
            elif spec.kind is float:
                value = float(text)
            elif spec.kind is list:
                value = [item.strip() for item in text.split(",") if item.strip()]
        except ValueError:
            raise ConfigError(plugin, spec.name, f"expected {expected}, got {value!r}") from None
    ok = isinstance(value, spec.kind) and not (spec.kind is int and isinstance(value, bool))
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(plugin, spec.name, f"expected {expected}, got {type(value).__name__} {value!r}")
    if spec.choices and value not in spec.choices:
        raise ConfigError(plugin, spec.name, f"expected one of {', '.join(map(str, spec.choices))}, got {value!r}")
    return value


def resolve_config(
    plugin: str,
    fields: Sequence[ConfigField],
    raw: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check ``raw`` against ``fields``, resolve references and defaults, and return the values.

    Unknown keys are refused too: a misspelt setting should not silently fall back to a default.
    """
    env = os.environ if environ is None else environ
    known = {spec.name for spec in fields}
    for key in raw:
        if key not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ConfigError(plugin, key, f"is not a setting of this adapter (its settings: {names})")
    resolved: dict[str, Any] = {}
    for spec in fields:
        if spec.name in raw:
            value = _dereference(plugin, spec.name, raw[spec.name], env)
            resolved[spec.name] = _coerce(plugin, spec, value)
        elif spec.required:
            raise ConfigError(plugin, spec.name, f"is required ({spec.description})")
        else:
            resolved[spec.name] = spec.default
    return resolved
