"""``{% cache %}`` (portal/web/fragments.py): a fragment is rendered once per key, and the cache stays
within its size."""

from __future__ import annotations

from jinja2 import DictLoader, Environment

from portal.web.fragments import FragmentCache, Fragments

PAGE = (
    "{% cache 'lines', statement, language %}"
    "{% for line in lines %}<li>{{ count(line) }}</li>{% endfor %}"
    "{% endcache %}|{% cache 'lines', statement, language %}{{ count('second tag') }}{% endcache %}"
)


def environment() -> tuple[Environment, list[str]]:
    rendered: list[str] = []

    def count(what: str) -> str:
        rendered.append(what)
        return what

    env = Environment(loader=DictLoader({"page.html": PAGE}), autoescape=True, extensions=[FragmentCache])
    env.globals["count"] = count
    return env, rendered


def test_a_fragment_is_rendered_once_per_key_and_served_after():
    env, rendered = environment()
    page = env.get_template("page.html")
    first = page.render(statement="st-1", language="en", lines=["<b>a</b>", "b"])
    again = page.render(statement="st-1", language="en", lines=["changed", "but", "same key"])
    assert first == again == "<li>&lt;b&gt;a&lt;/b&gt;</li><li>b</li>|second tag", "escaped once, not twice"
    assert rendered == ["<b>a</b>", "b", "second tag"], "two tags with the same words are two fragments"
    page.render(statement="st-1", language="es", lines=["c"])
    page.render(statement="st-2", language="en", lines=["d"])
    assert rendered[3:] == ["c", "second tag", "d", "second tag"], "every word of the key counts"


def test_the_least_recently_used_fragments_leave_first_when_full():
    fragments = Fragments(capacity=10)
    fragments.get("a", lambda: "aaaa")  # type: ignore[arg-type, return-value]
    fragments.get("b", lambda: "bbbb")  # type: ignore[arg-type, return-value]
    fragments.get("a", lambda: "new")  # type: ignore[arg-type, return-value]  # used again: now the newest
    fragments.get("c", lambda: "cccc")  # type: ignore[arg-type, return-value]
    assert fragments.size == 8
    assert fragments.get("a", lambda: "again") == "aaaa"  # type: ignore[arg-type, return-value]
    assert fragments.get("b", lambda: "again") == "again", "b was the least recently used"  # type: ignore[arg-type, return-value]
