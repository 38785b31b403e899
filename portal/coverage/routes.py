"""Every controller of the coverage domain, registered by ``portal.app`` in one line."""

from __future__ import annotations

from typing import Any

from portal.coverage.pages import CardPhotoController, CardPhotosController, CoverageFormController, InsuranceController

ROUTES: list[Any] = [InsuranceController, CoverageFormController, CardPhotosController, CardPhotoController]
