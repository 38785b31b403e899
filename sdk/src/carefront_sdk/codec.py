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
from collections.abc import Mapping
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


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_plain(hint: Any, data: Any) -> Any:
    """The value of type ``hint`` that :func:`to_plain` turned into ``data``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if data is None and type(None) in options:
            return None
        return from_plain(next(option for option in options if option is not type(None)), data)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(from_plain(item, entry) for entry in data)
    if origin is not None and issubclass(origin, Mapping):
        return dict(data)
    if hint is datetime:
        return datetime.fromisoformat(data)
    if hint is date:
        return date.fromisoformat(data)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(data)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        return hint(**{name: from_plain(hints[name], entry) for name, entry in data.items()})
    return data
