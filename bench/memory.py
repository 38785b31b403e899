"""A bench-only plugin: the sandbox's EHR with every read answered from memory after its first call.

The benchmark serves each page twice — once on the sandbox EHR (SQLite, like a real EHR's storage
behind the adapter) and once on this — with the same templates and the same portal: the ratio is
what the EHR's storage and the plugin seam cost. Reads are preloaded by a warm-up pass over the pages;
writes go to the sandbox and empty the memory, so nothing stale is served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from carefront_sandbox.base import FIELDS
from carefront_sandbox.ehr import make_ehr
from carefront_sdk import hookimpl
from carefront_sdk.adapters import AdapterContext, AdapterRegistry

NAME = "memory"
WRITES = {"write_coverage", "book", "cancel", "post_payment"}


class MemoryEHR:
    """Any EHR, its reads remembered by arguments."""

    def __init__(self, ehr: Any) -> None:
        self._ehr = ehr
        self._answers: dict[tuple[Any, ...], Any] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._ehr, name)
        if name.startswith("_") or not callable(method):
            return method
        if name in WRITES:
            return self._write(method)
        return self._read(name, method)

    def _read(self, name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def remembered(*args: Any, **kwargs: Any) -> Any:
            key = (name, args, tuple(sorted(kwargs.items())))
            try:
                return self._answers[key]
            except KeyError:
                self._answers[key] = answer = await method(*args, **kwargs)
                return answer
            except TypeError:  # an argument that cannot be a key (a list): asked of the EHR each time
                return await method(*args, **kwargs)

        return remembered

    def _write(self, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def forgetting(*args: Any, **kwargs: Any) -> Any:
            self._answers.clear()
            return await method(*args, **kwargs)

        return forgetting


def make_memory_ehr(context: AdapterContext) -> MemoryEHR:
    return MemoryEHR(make_ehr(context))


@hookimpl
def carefront_register_ehr(registry: AdapterRegistry) -> None:
    registry.add(NAME, make_memory_ehr, config=FIELDS)
