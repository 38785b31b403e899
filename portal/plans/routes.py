"""Every controller of the plans domain, registered by ``portal.app`` in one line."""

from __future__ import annotations

from typing import Any

from portal.plans.pages import PlanBuilderController, PlanController
from portal.plans.staff_pages import StaffPlanController

ROUTES: list[Any] = [PlanBuilderController, PlanController, StaffPlanController]
