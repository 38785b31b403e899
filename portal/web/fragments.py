"""``{% cache key, ... %}...{% endcache %}``: a rendered fragment kept and served again by its key.

Like Django's ``{% cache %}`` tag. A statement's charge lines are hundreds of rows that stay the same
for as long as the copy of the statement they come from (see ``portal.snapshots``): the template
keys them by the statement, the moment its copy was read, the visit, the language and whatever
else changes the markup, so the page, its htmx partials and the next visits within the copy's life
render them once (PROMISES.md budgets: 200 lines in ≤ 2 ms of the request).

The key must name everything the fragment shows; the cache is this process's memory, bounded by the
characters it holds, least recently used first out. Only fragments of data the request was already
allowed to read are keyed this way: the handler checks access before any template runs.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable

from jinja2 import Environment, nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from markupsafe import Markup

CAPACITY = 16_000_000
"""Characters of rendered HTML kept (~16 MB): a 238-line stay is ~200,000."""


class Fragments:
    """The rendered fragments, least recently used first."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.size = 0
        self._kept: OrderedDict[Hashable, Markup] = OrderedDict()

    def get(self, key: Hashable, render: Callable[[], Markup]) -> Markup:
        if (kept := self._kept.get(key)) is not None:
            self._kept.move_to_end(key)
            return kept
        fragment = render()  # Markup already: the body was rendered with autoescape on
        self._kept[key] = fragment
        self.size += len(fragment)
        while self.size > self.capacity:
            _, dropped = self._kept.popitem(last=False)
            self.size -= len(dropped)
        return fragment


class FragmentCache(Extension):
    tags = {"cache"}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.extend(fragments=Fragments())
        self._tags = itertools.count()

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        parts = [parser.parse_expression()]
        while parser.stream.skip_if("comma"):
            parts.append(parser.parse_expression())
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        # Each tag has a number of its own in the key: two tags with the same words keep two fragments.
        call = self.call_method("_fragment", [nodes.Const(next(self._tags)), nodes.Tuple(parts, "load")])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _fragment(self, tag: int, key: tuple[Hashable, ...], caller: Callable[[], Markup]) -> Markup:
        fragments: Fragments = self.environment.fragments  # type: ignore[attr-defined]
        return fragments.get((tag, *key), caller)
