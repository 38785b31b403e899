"""What every template can call besides gettext: fingerprinted static URLs and ``tel:`` links.

/static/ is served with a one-year immutable cache (portal/security.py), so every asset URL names
its content: ``static_url("css/carefront.css")`` is ``/static/css/carefront.css?v=<hash>``, and a
changed file gets a new URL. Files are hashed once, when the app is built.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment

_NOT_DIALLED = re.compile(r"[^\d+]")


class StaticAssets:
    """The fingerprinted URL of every file under the static folders."""

    def __init__(self, folders: Mapping[str, Path]) -> None:
        """``folders`` maps a URL prefix under /static/ ("" for the portal's, "plugins/<name>") to a folder."""
        self._urls: dict[str, str] = {}
        for prefix, folder in folders.items():
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    relative = "/".join(part for part in (prefix, file.relative_to(folder).as_posix()) if part)
                    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:10]
                    self._urls[relative] = f"/static/{relative}?v={digest}"

    def url(self, path: str) -> str:
        """The URL of ``path`` (relative to /static/); a typo fails loudly instead of a broken link."""
        try:
            return self._urls[path]
        except KeyError:
            raise LookupError(f"no static file {path!r} (looked under /static/)") from None


def tel_href(phone: str) -> str:
    """``+1 (555) 010-4400`` → ``tel:+15550104400``, for a link a phone can dial."""
    return "tel:" + _NOT_DIALLED.sub("", phone)


def install(environment: Environment, assets: StaticAssets) -> None:
    """Give templates ``static_url(path)`` and the ``tel`` filter."""
    environment.globals["static_url"] = assets.url
    environment.filters["tel"] = tel_href
