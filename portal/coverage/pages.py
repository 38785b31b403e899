"""The insurance pages: coverage on file with its last eligibility check, the forms that add, update
and remove a coverage, "check my coverage now", and card photos (upload, and the one route that
shows them).

Controllers only: coverage is read in ``on_file``, changed in ``changes``, checked in
``eligibility``, and photos are cleaned and sealed in ``card_photos``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from carefront_sdk.errors import NotFound, Unavailable
from carefront_sdk.models import Coverage, CoverageRank, Patient
from litestar import Controller, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Body, FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.access import patients_only
from portal.audit.access import record_access, who
from portal.coverage import card_photos, changes, eligibility
from portal.coverage.changes import Action, Details
from portal.coverage.coverage_form import (
    OTHER_PAYER,
    RANKS,
    RELATIONSHIP_WORDS,
    RELATIONSHIPS,
    CoverageForm,
    read_details,
)
from portal.coverage.on_file import coverages_on_file, find_coverage
from portal.coverage.payers import Payer, PayerDirectory, directory_for
from portal.i18n import I18n
from portal.identity.acting_for import acting_for_allowed
from portal.identity.secrets_at_rest import SecretUnreadable
from portal.identity.sessions import Realm, Viewer, viewer
from portal.plugin_host import PluginHost
from portal.settings import Settings
from portal.snapshots.service import Read

log = logging.getLogger("carefront.coverage")

INSURANCE = "/insurance"
URL_ENCODED = Body(media_type=RequestEncodingType.URL_ENCODED)
UPLOAD_LIMIT = 2 * card_photos.MAX_BYTES + 64 * 1024
"""Two photos at their cap and the form around them; a bigger body is refused before it is read."""


def _gettext(request: HTMXRequest) -> Any:
    i18n: I18n = request.app.state["i18n"]
    return i18n.gettext


def _actor(request: HTMXRequest) -> str:
    return str(who(viewer(request))["actor"])


def _today(plugin_host: PluginHost, settings: Settings) -> tuple[datetime, date]:
    now = plugin_host.clock()
    return now, now.astimezone(ZoneInfo(settings.hospital.time_zone)).date()


def _nav(plugin_host: PluginHost) -> dict[str, Any]:
    return {"nav_items": plugin_host.nav_items("patient", I18n.current()), "current_nav": INSURANCE}


def _subject(coverage: Coverage) -> str:
    return f"coverage:{coverage.id}"


# --- The insurance page ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckNotice:
    """What "Check my coverage now" could not do: wait (minutes), or the clearinghouse did not answer."""

    wait: int | None = None
    unavailable: bool = False
    checked: bool = False


async def _insurance_context(
    request: HTMXRequest, current: Viewer, plugin_host: PluginHost, now: datetime, notice: CheckNotice | None = None
) -> dict[str, Any]:
    patient_id = str(current.acting_for)
    read: Read[tuple[Coverage, ...]] = await coverages_on_file(plugin_host, patient_id, now)
    pending = await changes.pending_changes(patient_id, now)
    return {
        "read": read,
        "coverages": read.value,
        "pending": pending,
        "pending_by_coverage": {change.coverage_id: change for change in pending if change.coverage_id},
        "pending_adds": [change for change in pending if change.action is Action.ADD],
        "checks": await eligibility.last_checks(patient_id),
        "photos": await card_photos.current_photos(patient_id),
        "notice": notice or CheckNotice(),
        "ranks": RANKS,
        "relationship_words": RELATIONSHIP_WORDS,
        **_nav(plugin_host),
    }


class InsuranceController(Controller):
    """``/insurance``: what is on file, what is on its way to the EHR, and the last eligibility checks."""

    path = INSURANCE
    guards = [patients_only]
    dependencies = {"viewer": Provide(acting_for_allowed)}

    @get(name="insurance")
    async def insurance(
        self, request: HTMXRequest, viewer: NamedDependency[Viewer], plugin_host: NamedDependency[PluginHost]
    ) -> Template:
        context = await _insurance_context(request, viewer, plugin_host, plugin_host.clock())
        await record_access(request, "coverage.read", viewer.acting_for)
        return Template("coverage/insurance.html", context=context)

    @post("/check", name="insurance-check")
    async def check_now(
        self, request: HTMXRequest, viewer: NamedDependency[Viewer], plugin_host: NamedDependency[PluginHost]
    ) -> Template:
        """Check every coverage on file with the clearinghouse, at most a few times an hour."""
        now = plugin_host.clock()
        patient_id = str(viewer.acting_for)
        verdict = await eligibility.may_check_now(patient_id, now)
        if not verdict.allowed:
            minutes = max(1, -(-int(verdict.retry_after.total_seconds()) // 60))
            notice, status = CheckNotice(wait=minutes), 429
        else:
            notice, status = await _check_all(request, plugin_host, patient_id, now)
        context = await _insurance_context(request, viewer, plugin_host, now, notice)
        await record_access(request, "coverage.read", viewer.acting_for)
        template = "coverage/_on_file.html" if request.htmx else "coverage/insurance.html"
        return Template(template, context=context, status_code=status)


async def _check_all(
    request: HTMXRequest, plugin_host: PluginHost, patient_id: str, now: datetime
) -> tuple[CheckNotice, int]:
    try:
        coverages = (await coverages_on_file(plugin_host, patient_id, now)).value
        patient = await plugin_host.ehr.read_patient(patient_id)
        for coverage in coverages:
            answer = await eligibility.check(plugin_host, patient_id, patient, coverage)
            await record_access(request, "eligibility.check", _subject(coverage), detail={"outcome": answer.outcome})
    except Unavailable:
        await record_access(request, "eligibility.check", patient_id, outcome="unavailable")
        return CheckNotice(unavailable=True), 503
    return CheckNotice(checked=True), 200


# --- Adding, updating and removing a coverage -----------------------------------------------------


class CoverageFormController(Controller):
    """The coverage form, for a new coverage or one on file, and the confirmation that removes one."""

    path = INSURANCE
    guards = [patients_only]
    dependencies = {"viewer": Provide(acting_for_allowed)}

    @get("/add", name="coverage-add")
    async def add_form(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        settings: NamedDependency[Settings],
        q: FromQuery[str] = "",
        rank: FromQuery[str] = "",
        payer_id: FromQuery[str] = "",
    ) -> Template:
        """The empty form; ``q`` filters the list of insurance companies (as you type, with htmx)."""
        form = CoverageForm(rank=rank if rank in set(CoverageRank) else "", payer_id=payer_id, relationship="self")
        return _form_page(request, settings, form, {}, q=q, coverage=None)

    @post("/add")
    async def add(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[CoverageForm, URL_ENCODED],
    ) -> Template | Redirect:
        return await _submit(request, viewer, plugin_host, settings, data, None)

    @get("/coverages/{coverage_id:str}/edit", name="coverage-edit")
    async def edit_form(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        coverage_id: FromPath[str],
        q: FromQuery[str] = "",
        payer_id: FromQuery[str] = "",
    ) -> Template:
        coverage = await _own_coverage(plugin_host, viewer, coverage_id)
        form = CoverageForm.of(coverage, directory_for(settings))
        form.payer_id = payer_id or form.payer_id
        await record_access(request, "coverage.read", _subject(coverage))
        return _form_page(request, settings, form, {}, q=q, coverage=coverage)

    @post("/coverages/{coverage_id:str}/edit")
    async def edit(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        coverage_id: FromPath[str],
        data: Annotated[CoverageForm, URL_ENCODED],
    ) -> Template | Redirect:
        coverage = await _own_coverage(plugin_host, viewer, coverage_id)
        return await _submit(request, viewer, plugin_host, settings, data, coverage)

    @get("/coverages/{coverage_id:str}/remove", name="coverage-remove")
    async def remove_form(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        coverage_id: FromPath[str],
    ) -> Template:
        coverage = await _own_coverage(plugin_host, viewer, coverage_id)
        await record_access(request, "coverage.read", _subject(coverage))
        return Template("coverage/remove.html", context={"coverage": coverage, "ranks": RANKS, **_nav(plugin_host)})

    @post("/coverages/{coverage_id:str}/remove")
    async def remove(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        coverage_id: FromPath[str],
    ) -> Redirect:
        coverage = await _own_coverage(plugin_host, viewer, coverage_id)
        now = plugin_host.clock()
        patient_id = str(viewer.acting_for)
        change_id = await changes.request_change(
            patient_id, Action.REMOVE, None, coverage_id=coverage.id, rank=coverage.rank, actor=_actor(request), now=now
        )
        await card_photos.retire(patient_id, coverage.rank)
        await record_access(
            request,
            "coverage.change",
            f"coverage_change:{change_id}",
            detail={"action": "remove", "coverage": coverage.id},
        )
        plugin_host.emit("carefront_coverage_changed", changes.event_for(patient_id, Action.REMOVE, coverage.id, now))
        return Redirect(INSURANCE, status_code=303)


async def _own_coverage(plugin_host: PluginHost, current: Viewer, coverage_id: str) -> Coverage:
    """The coverage on file of the patient the pages show; anyone else's is 404 like a missing one."""
    read = await coverages_on_file(plugin_host, str(current.acting_for), plugin_host.clock())
    try:
        return find_coverage(read.value, coverage_id)
    except NotFound:
        raise NotFoundException() from None


def _form_page(
    request: HTMXRequest,
    settings: Settings,
    form: CoverageForm,
    errors: dict[str, str],
    *,
    q: str,
    coverage: Coverage | None,
    status_code: int = 200,
) -> Template:
    """The form page, or only the list of insurance companies for the search box's htmx request."""
    directory = directory_for(settings)
    payers = directory.search(q)
    chosen = directory.find(form.payer_id)
    if chosen is not None and chosen not in payers:
        payers = (chosen, *payers)  # the company already chosen stays in view while searching
    context = {
        "form": form,
        "errors": _translated_errors(request, errors, chosen),
        "payers": payers,
        "q": q,
        "other_payer": OTHER_PAYER,
        "coverage": coverage,
        "ranks": RANKS,
        "relationships": RELATIONSHIPS,
        "form_path": request.url.path,
        **_nav(request.app.state["plugin_host"]),
    }
    if request.htmx and not request.htmx.boosted and request.method == "GET":
        return Template("coverage/_payer_choices.html", context=context)
    return Template("coverage/coverage_form.html", context=context, status_code=status_code)


def _translated_errors(request: HTMXRequest, errors: dict[str, str], payer: Payer | None) -> dict[str, str]:
    _ = _gettext(request)
    values = {"payer": payer.name if payer else "", "example": (payer.member_id_example or "") if payer else ""}
    return {name: _(message) % values for name, message in errors.items()}


async def _submit(
    request: HTMXRequest,
    current: Viewer,
    plugin_host: PluginHost,
    settings: Settings,
    form: CoverageForm,
    coverage: Coverage | None,
) -> Template | Redirect:
    now, today = _today(plugin_host, settings)
    directory: PayerDirectory = directory_for(settings)
    if coverage is not None:
        form.rank = coverage.rank.value  # updating keeps the rank; moving one is remove and add
    details, errors = read_details(form, directory, today)
    if details is None:
        return _form_page(request, settings, form, errors, q="", coverage=coverage, status_code=422)
    patient_id = str(current.acting_for)
    action = Action.ADD if coverage is None else Action.UPDATE
    change_id = await changes.request_change(
        patient_id,
        action,
        details,
        coverage_id=coverage.id if coverage else None,
        rank=details.rank,
        actor=_actor(request),
        now=now,
    )
    if action is Action.ADD:
        await card_photos.retire(patient_id, details.rank)  # the photos were of the card this one replaces
    await record_access(
        request,
        "coverage.change",
        f"coverage_change:{change_id}",
        detail={"action": action.value, "coverage": coverage.id if coverage else ""},
    )
    plugin_host.emit(
        "carefront_coverage_changed", changes.event_for(patient_id, action, coverage.id if coverage else None, now)
    )
    await _check_changed(request, plugin_host, patient_id, details, coverage, now, today)
    if action is Action.ADD:
        return Redirect(f"{INSURANCE}/cards?rank={details.rank.value}&added=1", status_code=303)
    return Redirect(INSURANCE, status_code=303)


async def _check_changed(
    request: HTMXRequest,
    plugin_host: PluginHost,
    patient_id: str,
    details: Details,
    coverage: Coverage | None,
    now: datetime,
    today: date,
) -> None:
    """Check the coverage as it was just entered, so the answer is there when the patient looks.

    Best effort: a busy patient's throttle, or a clearinghouse that does not answer, leaves it for
    "Check my coverage now".
    """
    if not (await eligibility.may_check_now(patient_id, now)).allowed:
        return
    try:
        patient = await plugin_host.ehr.read_patient(patient_id)
        entered = _as_coverage(details, patient, coverage, today)
        answer = await eligibility.check(plugin_host, patient_id, patient, entered)
    except Unavailable:
        await record_access(request, "eligibility.check", patient_id, outcome="unavailable")
        return
    await record_access(request, "eligibility.check", patient_id, detail={"outcome": answer.outcome})


def _as_coverage(details: Details, patient: Patient, coverage: Coverage | None, today: date) -> Coverage:
    return Coverage(
        id=coverage.id if coverage else "",
        patient_id=patient.id,
        rank=details.rank,
        payer_id=details.payer_id,
        payer_name=details.payer_name,
        plan_name=details.plan_name,
        member_id=details.member_id,
        group_number=details.group_number or None,
        subscriber_name=details.subscriber_name or f"{patient.given_name} {patient.family_name}",
        subscriber_birth_date=details.subscriber_birth_date or patient.birth_date,
        relationship=details.relationship,
        starts_on=coverage.starts_on if coverage else today,
    )


# --- Card photos ----------------------------------------------------------------------------------


def _rank_or_404(rank: str) -> CoverageRank:
    if rank not in set(CoverageRank):
        raise NotFoundException()
    return CoverageRank(rank)


def _too_large(request: HTMXRequest, exc: Exception) -> Template:
    """A body over the limit, refused before it is read (by whatever reads it first, the CSRF check
    included): the form again, the reason beside it. Nothing of the patient's is read for this page."""
    rank = request.query_params.get("rank", "primary")
    return Template(
        "coverage/card_photos.html",
        context={
            "rank": CoverageRank(rank) if rank in set(CoverageRank) else CoverageRank.PRIMARY,
            "ranks": RANKS,
            "photos": dict.fromkeys(card_photos.SIDES),
            "errors": {"front": _gettext(request)(card_photos.TOO_LARGE)},
            "added": False,
            **_nav(request.app.state["plugin_host"]),
        },
        status_code=413,
    )


class CardPhotosController(Controller):
    """``/insurance/cards``: photos of the front and back of a card, from the phone's camera."""

    path = f"{INSURANCE}/cards"
    guards = [patients_only]
    dependencies = {"viewer": Provide(acting_for_allowed)}

    @get(name="card-photos")
    async def photos_form(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        rank: FromQuery[str] = "primary",
        added: FromQuery[str] = "",
    ) -> Template:
        return await _photos_page(request, viewer, plugin_host, _rank_or_404(rank), {}, added=added == "1")

    @post(request_max_body_size=UPLOAD_LIMIT, exception_handlers={413: _too_large})
    async def upload(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        rank: FromQuery[str] = "primary",
    ) -> Template | Redirect:
        """Keep the photos chosen, each checked, re-encoded and sealed; none is kept if one is refused."""
        chosen_rank = _rank_or_404(rank)
        form = await request.form()
        cleaned: dict[str, card_photos.CleanPhoto] = {}
        errors: dict[str, str] = {}
        for side in card_photos.SIDES:
            upload = form.get(side)
            if not isinstance(upload, UploadFile):
                continue  # that side was not chosen: the browser sends an empty, nameless part
            data = await upload.read(card_photos.MAX_BYTES + 1)
            try:
                cleaned[side] = card_photos.clean(data, upload.filename or "")
            except card_photos.PhotoRefused as refused:
                errors[side] = refused.reason
        if not cleaned and not errors:
            errors["front"] = card_photos.NO_PHOTO
        if errors:
            await record_access(request, "card.upload", viewer.acting_for, outcome="refused")
            return await _photos_page(request, viewer, plugin_host, chosen_rank, errors, status_code=422)
        now = plugin_host.clock()
        for side, photo in cleaned.items():
            public_id = await card_photos.keep(
                settings,
                photo,
                patient_id=str(viewer.acting_for),
                rank=chosen_rank,
                side=side,
                actor=_actor(request),
                now=now,
            )
            await record_access(request, "card.upload", f"card:{public_id}", detail={"side": side})
        return Redirect(INSURANCE, status_code=303)


async def _photos_page(
    request: HTMXRequest,
    current: Viewer,
    plugin_host: PluginHost,
    rank: CoverageRank,
    errors: dict[str, str],
    *,
    added: bool = False,
    status_code: int = 200,
) -> Template:
    _ = _gettext(request)
    photos = await card_photos.current_photos(str(current.acting_for))
    return Template(
        "coverage/card_photos.html",
        context={
            "rank": rank,
            "ranks": RANKS,
            "photos": {side: photos.get((rank, side)) for side in card_photos.SIDES},
            "errors": {name: _(message) for name, message in errors.items()},
            "added": added,
            **_nav(plugin_host),
        },
        status_code=status_code,
    )


def patients_or_staff(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Card photos are shown to the patient, those they share their account with, and staff."""
    current = viewer(connection)
    if current is None:
        raise NotAuthorizedException("Please sign in to continue.")
    if current.realm not in {Realm.PATIENT, Realm.STAFF}:
        raise PermissionDeniedException("This page is for patients.")


class CardPhotoController(Controller):
    """``/insurance/cards/<id>``: one card photo, the only way a stored photo leaves the server."""

    path = f"{INSURANCE}/cards"
    guards = [patients_or_staff]

    @get("/{card_id:uuid}", name="card-photo")
    async def photo(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        card_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        current = viewer(request)
        row = await card_photos.find(card_id)
        if current is not None and current.realm is Realm.PATIENT:
            current = await acting_for_allowed(request, plugin_host)
            if row is not None and row["patient_id"] != current.acting_for:
                row = None
        if row is None:
            raise NotFoundException()
        try:
            data = card_photos.open_photo(settings, row)
        except (OSError, SecretUnreadable):
            log.error(
                "card photo %s could not be opened: its file is missing, altered or sealed under another key", card_id
            )
            raise NotFoundException() from None
        await record_access(request, "card.read", f"card:{card_id}")
        return Response(
            data,
            media_type=row["media_type"],
            headers={"Cache-Control": "no-store", "Content-Disposition": "inline"},
        )
