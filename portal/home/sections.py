"""The home page's sections, each from its own adapter call, run side by side.

A domain adds a section in two steps:

1. Write a provider in the domain, with exactly this signature::

       async def coverage_section(
           request: HTMXRequest, viewer: Viewer, plugin_host: PluginHost, now: datetime
       ) -> HomeSection | None:
           read = await coverages_of(plugin_host, viewer.acting_for, now=now)  # the domain's own read
           await record_access(request, "coverage.list", None)  # it reads patient data: one audit row
           return HomeSection("coverage/home_section.html", {"read": read}, order=20)

   ``viewer.acting_for`` is the patient whose home it is. Return None to show nothing (a billing
   delegate has ``viewer.sees_clinical`` False: no appointments or clinical text). The template is
   included inside the page's ``<main>`` with ``section`` (this HomeSection: ``section.context``
   holds what the provider gave) and renders one ``<section class="card">`` with an ``<h2>``.

2. Add one line to ``HOME_SECTIONS`` in ``portal/home/page.py``::

       SectionSource(coverage_section, N_("We can't show your insurance right now."), order=20),

A provider that raises ``carefront_sdk.errors.Unavailable``, takes longer than
:data:`SECTION_SECONDS`, or fails in any other way (logged) is shown as its ``unavailable`` text in a
card of its own, at its ``order``: the rest of the page renders as usual. Sections are shown by
``order``, lowest first; the billing section is 10.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from carefront_sdk.errors import Unavailable
from litestar.plugins.htmx import HTMXRequest

from portal.identity.sessions import Viewer
from portal.plugin_host import PluginHost

log = logging.getLogger("carefront.home")

SECTION_SECONDS = 5.0
"""How long the page waits for one section before showing it as unavailable."""


@dataclass(frozen=True, slots=True)
class HomeSection:
    """What a provider shows: its template, that template's context, and where on the page."""

    template: str
    context: Mapping[str, Any] = field(default_factory=dict)
    order: int = 100


Provider = Callable[[HTMXRequest, Viewer, PluginHost, datetime], Awaitable[HomeSection | None]]


@dataclass(frozen=True, slots=True)
class SectionSource:
    """A provider, what the page says in its place when it cannot answer (an ``N_`` msgid), and its order."""

    provide: Provider
    unavailable: str
    order: int


@dataclass(frozen=True, slots=True)
class ShownSection:
    """One section as the page shows it: the provider's, or ``unavailable`` text in its place."""

    order: int
    section: HomeSection | None = None
    unavailable: str | None = None


async def _shown(
    source: SectionSource, request: HTMXRequest, viewer: Viewer, plugin_host: PluginHost, now: datetime
) -> ShownSection | None:
    try:
        async with asyncio.timeout(SECTION_SECONDS):
            section = await source.provide(request, viewer, plugin_host, now)
    except (Unavailable, TimeoutError):
        log.warning("home section %s unavailable", source.provide.__qualname__)
        return ShownSection(source.order, unavailable=source.unavailable)
    except Exception:
        # One domain's failure must not take the home page down with it.
        log.exception("home section %s failed", source.provide.__qualname__)
        return ShownSection(source.order, unavailable=source.unavailable)
    return None if section is None else ShownSection(section.order, section=section)


async def gather_sections(
    sources: Sequence[SectionSource], request: HTMXRequest, viewer: Viewer, plugin_host: PluginHost, now: datetime
) -> list[ShownSection]:
    """Every source's section, asked concurrently, in page order."""
    shown = await asyncio.gather(*(_shown(source, request, viewer, plugin_host, now) for source in sources))
    return sorted((section for section in shown if section is not None), key=lambda section: section.order)
