"""JSON for the SDK's frozen models, so plugins (idempotency records, webhook bodies) and the portal
(EHR snapshots) can store them.

Decoding is driven by the dataclass's type hints: the stored text carries no type tags and the
reader always knows what it asked for.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import cache
from typing import Any

__all__ = ["dumps", "from_plain", "to_plain"]


def to_plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses become objects, dates ISO text, tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: to_plain(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date):  # datetime too: it is a date
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [to_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    return value


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON of ``value``: equal values give equal text (used as fingerprints)."""
    return json.dumps(to_plain(value), sort_keys=True, separators=(",", ":"))


def from_plain(hint: Any, data: Any) -> Any:
    """The value of type ``hint`` that :func:`to_plain` turned into ``data``."""
    return _decoder(hint)(data)


def _same(data: Any) -> Any:
    return data


@cache
def _decoder(hint: Any) -> Callable[[Any], Any]:
    """A function decoding ``hint`` from plain data, worked out once per type: a 200-line statement
    is ~30,000 values, and reading the type hints again for each made decoding the slowest part of
    serving it from its snapshot."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = _decoder(next(option for option in typing.get_args(hint) if option is not type(None)))
        return lambda data: None if data is None else inner(data)
    if origin is tuple:
        item = _decoder(typing.get_args(hint)[0])
        if item is _same:
            return tuple
        return lambda data: tuple([item(entry) for entry in data])
    if origin is not None and issubclass(origin, Mapping):
        return dict
    if hint is datetime:
        return datetime.fromisoformat
    if hint is date:
        return date.fromisoformat
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)
    return _same


def _dataclass_decoder(cls: type) -> Callable[[Any], Any]:
    hints = typing.get_type_hints(cls)
    fields: dict[str, Callable[[Any], Any]] = {}

    def decode(data: Any) -> Any:
        if not fields:  # filled on first use: a model may refer to itself
            fields.update({name: _decoder(hint) for name, hint in hints.items()})
        return cls(**{name: fields[name](entry) for name, entry in data.items()})

    return decode
