"""Every controller of the identity domain, registered by ``portal.app`` in one line."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
