"""The insurance pages in process: coverage on file, changes through the outbox to the EHR, eligibility
in plain words (a 271 AAA rejection with its fix), card photos, throttling, Spanish, and audit rows."""

from __future__ import annotations

import io
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from carefront_sdk.adapters import Port
from carefront_sdk.errors import Unavailable
from carefront_sdk.models import CoverageRank
from PIL import Image

from portal import jobs
from portal.audit.tables import AuditEvent
from portal.coverage.tables import CardPhoto, CoverageChangeRequest
from portal.identity import accounts, throttle
from portal.outbox.tables import OutboxMessage
from portal.snapshots.tables import Snapshot

CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def token(client: httpx.AsyncClient, path: str = "/insurance") -> str:
    match = CSRF_INPUT.search((await client.get(path)).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


async def patient_without_secondary(app) -> str:
    """A sandbox patient with a primary coverage and no secondary, whose insurance no test here changed."""
    ehr = app.state["plugin_host"].ehr
    start = 2 + secrets.randbelow(20)
    for number in [*range(start, 60), *range(2, start)]:
        patient_id = f"pt-{number:06d}"
        if await CoverageChangeRequest.exists().where(CoverageChangeRequest.patient_id == patient_id):
            continue
        if await CardPhoto.exists().where(CardPhoto.patient_id == patient_id):
            continue
        ranks = {coverage.rank for coverage in await ehr.list_coverages(patient_id)}
        if ranks == {CoverageRank.PRIMARY}:
            return patient_id
    pytest.fail("no sandbox patient with a primary coverage only")


async def sign_in_as(client, session_as, role: str, **values: str) -> None:
    client.cookies.clear()  # the session cookie the app renewed would otherwise still be sent
    await session_as(role, **values)


@pytest.fixture
async def patient(app, client, session_as) -> str:
    patient_id = await patient_without_secondary(app)
    await throttle.clear(f"eligibility:patient:{patient_id}")
    await sign_in_as(client, session_as, "patient", acting_for=patient_id, access="self")
    return patient_id


def jpeg(width: int = 800, height: int = 500, **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 160)).save(out, format="JPEG", **save)
    return out.getvalue()


async def add_secondary(client, member_id: str = "W123456789", payer_id: str = "60054", **more: str) -> httpx.Response:
    form = {
        "_csrf_token": await token(client, "/insurance/add"),
        "rank": "secondary",
        "payer_id": payer_id,
        "member_id": member_id,
        "relationship": "self",
        **more,
    }
    return await client.post("/insurance/add", data=form)


async def test_the_page_shows_coverage_on_file_and_audits_the_read(app, client, patient):
    page = await client.get("/insurance")
    assert page.status_code == 200
    assert "Primary:" in page.text
    assert "Member ID" in page.text
    assert page.headers["cache-control"] == "no-store"
    rows = (
        await AuditEvent.select()
        .where((AuditEvent.action == "coverage.read") & (AuditEvent.acting_as == patient))
        .run()
    )
    assert rows


async def test_adding_a_secondary_goes_through_the_outbox_and_shows_pending_until_acknowledged(
    app, client, patient, monkeypatch
):
    host = app.state["plugin_host"]
    events = []
    emit = host.emit
    monkeypatch.setattr(host, "emit", lambda name, event: (events.append((name, event)), emit(name, event)))
    added = await add_secondary(client)
    assert [(name, event.patient_id, event.change) for name, event in events] == [
        ("carefront_coverage_changed", patient, "added")
    ]
    assert added.status_code == 303
    assert added.headers["location"] == "/insurance/cards?rank=secondary&added=1"
    page = await client.get("/insurance")
    assert "Secondary: Aetna" in page.text
    assert "waiting for confirmation" in page.text
    # The eligibility check ran as the coverage was entered: the answer is on the page in plain words.
    assert "Active" in page.text
    assert "Deductible this year" in page.text
    (change,) = await CoverageChangeRequest.select().where(CoverageChangeRequest.patient_id == patient).run()
    message = await OutboxMessage.select().where(OutboxMessage.idempotency_key == change["idempotency_key"]).first()
    assert message["kind"] == "ehr.write_coverage"
    assert message["state"] == "pending"
    assert "W123456789" not in message["payload"]

    await jobs.run_once(app.state["plugin_host"], app.state["settings"])

    message = await OutboxMessage.select().where(OutboxMessage.idempotency_key == change["idempotency_key"]).first()
    assert message["state"] == "delivered"
    page = await client.get("/insurance")
    assert "waiting for confirmation" not in page.text
    assert "Secondary: Aetna" in page.text
    on_file = await app.state["plugin_host"].ehr.list_coverages(patient)
    assert [coverage.member_id for coverage in on_file if coverage.rank is CoverageRank.SECONDARY] == ["W123456789"]
    changes = (
        await AuditEvent.select()
        .where((AuditEvent.action == "coverage.change") & (AuditEvent.acting_as == patient))
        .run()
    )
    assert len(changes) == 1


async def test_a_member_id_of_the_wrong_shape_is_refused_beside_the_field(client, patient):
    refused = await add_secondary(client, member_id="12345")
    assert refused.status_code == 422
    assert "Aetna member IDs look like W123456789" in refused.text
    assert 'id="member_id-error"' in refused.text
    assert 'value="12345"' in refused.text


async def test_a_rejection_is_explained_with_what_to_fix(client, patient):
    added = await add_secondary(client, member_id="AB1", payer_id="other", payer_name="Prairie Mutual Health")
    assert added.status_code == 303
    page = await client.get("/insurance")
    assert "Could not be confirmed" in page.text
    assert "Check the member ID on your card" in page.text


async def test_a_coverage_on_file_can_be_updated_and_removed(app, client, patient):
    (primary,) = await app.state["plugin_host"].ehr.list_coverages(patient)
    form = await client.get(f"/insurance/coverages/{primary.id}/edit")
    assert form.status_code == 200
    assert f'value="{primary.member_id}"' in form.text
    updated = await client.post(
        f"/insurance/coverages/{primary.id}/edit",
        data={
            "_csrf_token": await token(client),
            "payer_id": "other",
            "payer_name": primary.payer_name,
            "member_id": primary.member_id,
            "group_number": "GRP-77",
            "relationship": "spouse",
            "subscriber_name": "Sam Example",
            "subscriber_birth_date": "1970-02-03",
        },
    )
    assert updated.status_code == 303
    assert "waiting for confirmation" in (await client.get("/insurance")).text
    removed = await client.post(f"/insurance/coverages/{primary.id}/remove", data={"_csrf_token": await token(client)})
    assert removed.status_code == 303
    await jobs.run_once(app.state["plugin_host"], app.state["settings"])
    assert await app.state["plugin_host"].ehr.list_coverages(patient) == []
    page = await client.get("/insurance")
    assert "No insurance on file" in page.text
    assert "waiting for confirmation" not in page.text
    rows = await CoverageChangeRequest.select().where(CoverageChangeRequest.patient_id == patient).run()
    assert [row["action"] for row in rows] == ["update", "remove"]
    assert all(row["acknowledged_at"] is not None for row in rows)


async def test_the_subscriber_is_asked_for_when_it_is_not_the_patient(client, patient):
    refused = await add_secondary(client, relationship="child")
    assert refused.status_code == 422
    assert "Enter the subscriber&#39;s name" in refused.text or "Enter the subscriber's name" in refused.text
    assert 'id="subscriber_birth_date-error"' in refused.text


async def test_the_payer_list_filters_as_the_patient_types(client, patient):
    partial = await client.get("/insurance/add", params={"q": "blue"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert "Blue Cross Blue Shield of Illinois" in partial.text
    assert "Aetna" not in partial.text
    assert "My insurance company is not listed" in partial.text
    without_js = await client.get("/insurance/add", params={"q": "aetna"})
    assert "<html" in without_js.text
    assert "Humana" not in without_js.text
    assert "Aetna" in without_js.text


async def test_check_now_is_throttled_per_patient(client, patient):
    for _ in range(5):
        checked = await client.post("/insurance/check", data={"_csrf_token": await token(client)})
        assert checked.status_code == 200
        assert "We checked your coverage" in checked.text
    refused = await client.post("/insurance/check", data={"_csrf_token": await token(client)})
    assert refused.status_code == 429
    assert "Please try again in" in refused.text
    assert "Primary:" in refused.text


async def test_check_now_answers_htmx_with_the_list_only(client, patient):
    checked = await client.post(
        "/insurance/check", data={"_csrf_token": await token(client)}, headers={"HX-Request": "true"}
    )
    assert checked.status_code == 200
    assert checked.text.lstrip().startswith('<div id="coverage-list">') or 'id="coverage-list"' in checked.text[:400]
    assert "<html" not in checked.text


async def test_a_clearinghouse_that_does_not_answer_leaves_the_page_intact(app, client, patient):
    added = await add_secondary(client, member_id="ZX123456", payer_id="other", payer_name="Unavailable Mutual")
    assert added.status_code == 303
    await jobs.run_once(app.state["plugin_host"], app.state["settings"])
    checked = await client.post("/insurance/check", data={"_csrf_token": await token(client)})
    assert checked.status_code == 503
    assert "We could not reach the insurance company just now" in checked.text
    assert "Primary:" in checked.text
    assert "Secondary: Unavailable Mutual" in checked.text


async def test_the_pages_speak_spanish(client, patient):
    client.cookies.set("lang", "es")
    page = await client.get("/insurance")
    assert "Seguro médico" in page.text
    assert "Agregar seguro" in page.text
    refused = await add_secondary(client, member_id="12345")
    assert "Los números de miembro de Aetna" in refused.text


async def upload(client, files: dict[str, tuple[str, bytes, str]], rank: str = "secondary") -> httpx.Response:
    return await client.post(
        f"/insurance/cards?rank={rank}",
        data={"_csrf_token": await token(client, f"/insurance/cards?rank={rank}")},
        files=files,
    )


def gps_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (41.0, 52.0, 55.0), 3: "W", 4: (87.0, 37.0, 40.0)}
    return jpeg(exif=exif.tobytes())


async def test_card_photos_are_kept_without_exif_and_shown_only_through_their_route(app, client, patient, settings):
    saved = await upload(
        client,
        {"front": ("front.jpg", gps_jpeg(), "image/jpeg"), "back": ("back.png", jpeg(), "image/png")},
        rank="primary",
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/insurance"
    rows = await CardPhoto.select().where(CardPhoto.patient_id == patient).run()
    assert {row["side"] for row in rows} == {"front", "back"}
    page = await client.get("/insurance")
    for row in rows:
        assert f"/insurance/cards/{row['public_id']}" in page.text
        stored = (settings.data_dir / "card-photos" / row["file_name"]).read_bytes()
        assert not stored.startswith(b"\xff\xd8"), "photos are sealed at rest"
        shown = await client.get(f"/insurance/cards/{row['public_id']}")
        assert shown.status_code == 200
        assert shown.headers["content-type"] == "image/jpeg"
        assert shown.headers["cache-control"] == "no-store"
        assert shown.headers["x-content-type-options"] == "nosniff"
        with Image.open(io.BytesIO(shown.content)) as image:
            assert not image.getexif()
            assert "exif" not in image.info
    actions = {
        row["action"] for row in await AuditEvent.select(AuditEvent.action).where(AuditEvent.acting_as == patient).run()
    }
    assert {"card.upload", "card.read"} <= actions


async def test_staff_see_a_card_photo(app, client, patient, session_as):
    assert (await upload(client, {"front": ("front.jpg", jpeg(), "image/jpeg")})).status_code == 303
    row = await CardPhoto.select().where(CardPhoto.patient_id == patient).first()
    await sign_in_as(client, session_as, "representative")
    shown = await client.get(f"/insurance/cards/{row['public_id']}")
    assert shown.status_code == 200
    assert shown.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("card.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "is not a photo"),
        ("card.jpg", b"<html><script>alert(1)</script></html>", "is not a photo"),
        ("card.jpg", b"", "is empty"),
        ("../../etc/card.jpg", jpeg(), "name is not allowed"),
    ],
    ids=["svg", "html-as-jpg", "empty", "path"],
)
async def test_a_hostile_upload_is_refused_beside_its_field(client, patient, name, data, message):
    refused = await upload(client, {"back": (name, data, "image/jpeg")})
    assert refused.status_code == 422
    assert 'id="back-error"' in refused.text
    assert message in refused.text
    assert await CardPhoto.count().where(CardPhoto.patient_id == patient) == 0


async def test_a_50_mb_upload_is_refused_before_it_is_read(client, patient):
    huge = b"\xff\xd8\xff" + b"\x00" * (50 * 1024 * 1024)
    refused = await upload(client, {"front": ("card.jpg", huge, "image/jpeg")})
    assert refused.status_code == 413
    assert 'id="front-error"' in refused.text
    assert "larger than 10 MB" in refused.text


async def test_guests_do_not_see_insurance(client, patient, session_as):
    await sign_in_as(
        client, session_as, "guest", realm="guest", acting_for=patient, access="guest", statement_id="st-1"
    )
    assert (await client.get("/insurance")).status_code == 403


async def test_the_home_page_says_what_about_insurance_needs_the_patient(app, client, patient, session_as):
    account = await accounts.create(
        datetime.now(UTC),
        public_id=uuid.uuid4(),
        realm="patient",
        email=f"coverage-{secrets.token_hex(4)}@example.org",
        email_verified_at=datetime.now(UTC),
        given_name="Cora",
        family_name="Coverage",
        patient_id=patient,
    )
    added = await add_secondary(client, member_id="AB1", payer_id="other", payer_name="Prairie Mutual Health")
    assert added.status_code == 303
    await jobs.run_once(app.state["plugin_host"], app.state["settings"])
    await sign_in_as(
        client, session_as, "patient", account_id=str(account["public_id"]), acting_for=patient, access="self"
    )
    home = await client.get("/home")
    assert home.status_code == 200
    assert "Your insurance" in home.text
    assert "Your secondary insurance could not be confirmed: see what to fix." in home.text
    assert "Add photos of your primary insurance card." in home.text


async def test_with_the_ehr_down_the_page_shows_the_last_copy_as_of_its_time(app, client, patient, monkeypatch):
    assert (await client.get("/insurance")).status_code == 200  # a copy is kept
    await (
        Snapshot.update({Snapshot.read_at: datetime.now(UTC) - timedelta(hours=3)})
        .where(Snapshot.key == f"coverages:{patient}")
        .run()
    )
    adapter = app.state["plugin_host"].adapters[Port.EHR]._adapter

    async def not_answering(*args: object, **kwargs: object) -> None:
        raise Unavailable("test: the EHR is not answering")

    monkeypatch.setattr(adapter, "list_coverages", not_answering)
    page = await client.get("/insurance")
    assert page.status_code == 200
    assert "Showing what we had on" in page.text
    assert "Primary:" in page.text
    await Snapshot.delete().where(Snapshot.key == f"coverages:{patient}").run()
    assert (await client.get("/insurance")).status_code == 503


@pytest.mark.parametrize(
    "path",
    [
        "/insurance/cards/not-a-uuid",
        "/insurance/cards?rank=tertiary",
        "/insurance/coverages/%2e%2e/edit",
        "/insurance/add?rank=%00&q=%FF",
    ],
)
async def test_malformed_requests_get_a_clear_answer_not_a_failure(client, patient, path):
    answer = await client.get(path)
    assert answer.status_code < 500
    assert "Traceback" not in answer.text


async def test_a_malformed_form_is_sent_back_not_failed(client, patient):
    answer = await client.post(
        "/insurance/add",
        data={"_csrf_token": await token(client), "rank": ["primary", "secondary"], "member_id": "x" * 5000},
    )
    assert answer.status_code in {400, 422}
