"""A statement page printed to a tagged PDF (PDF/UA-1) by WeasyPrint, offline.

The HTML is the statement page itself rendered for print (every visit expanded, no navigation); its
``<title>`` and ``lang`` become the PDF's title and language, and its headings, lists and tables
the structure tree a screen reader follows. WeasyPrint may read only the portal's own static files:
anything else a page names (another origin, a data URL, a path outside the folder) is refused, so
rendering never reaches the network.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import weasyprint
from weasyprint.urls import URLFetcher, URLFetcherResponse

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
"""portal/static, served at /static/: the only files a statement PDF may load."""
BASE_URL = "https://portal.invalid/"
"""What relative URLs in the page resolve against; never fetched, only recognised by the fetcher."""


class RefusedFetch(ValueError):
    """WeasyPrint asked for something outside the portal's static folder."""


class StaticOnly(URLFetcher):
    """WeasyPrint's URL fetcher for statements: the file behind a ``/static/...`` URL, or a refusal."""

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}/" != BASE_URL or not parts.path.startswith("/static/"):
            raise RefusedFetch(f"a statement PDF loads only the portal's static files, not {url[:80]!r}")
        path = (STATIC_DIR / parts.path.removeprefix("/static/")).resolve()
        if not path.is_relative_to(STATIC_DIR) or not path.is_file():
            raise RefusedFetch(f"no static file {parts.path!r}")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": kind})


def _render(html: str) -> bytes:
    document = weasyprint.HTML(string=html, base_url=BASE_URL, url_fetcher=StaticOnly())
    pdf: bytes = document.write_pdf(pdf_variant="pdf/ua-1")
    return pdf


async def statement_pdf(html: str) -> bytes:
    """The PDF of a statement page's HTML, rendered in a worker thread (layout is CPU-bound)."""
    return await asyncio.to_thread(_render, html)
