"""Finding a caller: each kind of detail finds them; a result shows only what matched, masked where
a whole number says too much; opening the record is audited; patients never reach the console."""

from __future__ import annotations

from portal.audit.tables import AuditEvent
from portal.console.patients import mask_digits, read_query
from tests.integration.console_support import as_patient, as_staff, patient_account, post, staff_account

CALLER = "pt-31"


class Results:
    """The results part of the search page (the box above them keeps what was typed)."""

    def __init__(self, text: str) -> None:
        self.text = text.split('id="results-heading"', 1)[1]


async def search(client, text: str) -> Results:
    answer = await post(client, "/console/patients", {"q": text}, "/console/patients")
    assert answer.status_code == 200
    return Results(answer.text)


async def test_each_detail_finds_the_caller_showing_only_what_matched(portal, clock, browser):
    ehr = portal.state["plugin_host"].ehr
    patient = await ehr.read_patient(CALLER)
    statement = (await ehr.list_statements(CALLER))[0]
    staff = await staff_account(clock.now)
    open_link = f"/console/patients/{CALLER}"
    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        by_name = await search(client, f"{patient.given_name} {patient.family_name} {patient.birth_date:%m/%d/%Y}")
        assert open_link in by_name.text
        assert patient.family_name in by_name.text
        assert patient.birth_date.isoformat() in by_name.text
        assert patient.mrn not in by_name.text

        by_mrn = await search(client, patient.mrn)
        assert open_link in by_mrn.text
        assert patient.mrn in by_mrn.text
        assert patient.family_name not in by_mrn.text
        assert patient.birth_date.isoformat() not in by_mrn.text

        by_account = await search(client, patient.account_number)
        assert open_link in by_account.text
        assert mask_digits(patient.account_number) in by_account.text
        assert patient.account_number not in by_account.text

        by_code = await search(client, statement.statement_code.lower())
        assert open_link in by_code.text
        assert patient.family_name not in by_code.text

        phoned = next(p for p in [await ehr.read_patient(f"pt-{n}") for n in range(33, 61)] if p.phone)
        digits = phoned.phone[-10:]
        by_phone = await search(client, f"({digits[:3]}) {digits[3:6]}-{digits[6:]}")
        assert f"/console/patients/{phoned.id}" in by_phone.text
        assert mask_digits(phoned.phone) in by_phone.text
        assert digits not in by_phone.text

        nobody = await search(client, "Zzyzxnotaname")
        assert "No patient matches" in nobody.text

        record = await client.get(open_link)
        assert record.status_code == 200
        assert patient.mrn in record.text
    rows = await AuditEvent.select().where(AuditEvent.actor == f"account:{staff['public_id']}").run()
    assert [row["subject"] for row in rows if row["action"] == "patient.open"] == [CALLER]
    searches = [row for row in rows if row["action"] == "patient.search"]
    assert searches
    assert all(patient.family_name not in str(row["detail"]) for row in searches)


async def test_an_unknown_patient_is_not_found(portal, clock, browser):
    staff = await staff_account(clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        assert (await client.get("/console/patients/pt-999999")).status_code == 404


async def test_patients_never_reach_the_console(portal, clock, browser):
    account = await patient_account("pt-32", clock.now)
    async with browser(portal) as client:
        await as_patient(portal, client, account, clock.now)
        assert (await client.get("/console/patients")).status_code == 403
        assert (await client.get("/console/patients/pt-32")).status_code == 403


def test_what_is_typed_becomes_a_search():
    (both,) = read_query("Turner 12/01/1974")
    assert both.name == "Turner"
    assert both.birth_date.isoformat() == "1974-12-01"
    assert read_query("51050344")[0].mrn == "51050344"
    assert {query.account_number or query.phone for query in read_query("(312) 555-0123")} == {"3125550123"}
    assert read_query("h9am-4uyf")[0].statement_code == "H9AM4UYF"
    assert read_query("!!") == []
