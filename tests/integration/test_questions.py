"""Billing questions, from the patient's side and the work queue's: asked from a charge line, a
statement or the account; someone else's statement or question answers 404; replies reach the patient
and tell them by email; internal notes never reach them; the queue filters."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from portal import jobs
from portal.audit.tables import AuditEvent
from portal.questions import service
from portal.questions.tables import Question, QuestionMessage
from tests.integration.console_support import as_patient, as_staff, patient_account, post, staff_account

ASKER = "pt-21"
OTHER = "pt-22"


async def a_line(portal, patient_id: str) -> tuple[str, str]:
    ehr = portal.state["plugin_host"].ehr
    for summary in await ehr.list_statements(patient_id):
        statement = await ehr.read_statement(summary.id)
        if statement.lines:
            return summary.id, statement.lines[0].id
    raise AssertionError(f"{patient_id} has no statement with lines")


async def ask(client, statement: str = "", line: str = "", **fields: str):
    page = "/questions/new" + (f"?{urlencode({'statement': statement, 'line': line})}" if statement else "")
    form = {"category": "unrecognised", "message": "What is this charge?", "reply_by": "email"} | fields
    return await post(client, "/questions/new", form | {"statement": statement, "line": line}, page)


async def test_a_patient_asks_about_a_charge_line_and_sees_the_question(portal, clock, browser):
    account = await patient_account(ASKER, clock.now)
    statement_id, line_id = await a_line(portal, ASKER)
    async with browser(portal) as client:
        await as_patient(portal, client, account, clock.now)
        form = await client.get(f"/questions/new?statement={statement_id}&line={line_id}")
        assert form.status_code == 200
        line = next(
            line
            for line in (await portal.state["plugin_host"].ehr.read_statement(statement_id)).lines
            if line.id == line_id
        )
        assert line.description in form.text
        asked = await ask(client, statement_id, line_id)
        assert asked.status_code == 303
        page = await client.get(asked.headers["location"])
        assert page.status_code == 200
        assert "What is this charge?" in page.text
        assert line.description in page.text
        assert "I don&#39;t recognise this charge" in page.text or "I don't recognise this charge" in page.text
        listing = await client.get("/questions")
        assert asked.headers["location"].split("?")[0] in listing.text
    question = (
        await Question.select().where(Question.patient_id == ASKER).order_by(Question.id, ascending=False).first().run()
    )
    assert question["statement_id"] == statement_id
    assert question["line_id"] == line_id
    assert question["due_at"] == question["created_at"] + timedelta(hours=48)
    assert question["status"] == "open"


async def test_a_question_about_the_whole_account_needs_no_statement(portal, clock, browser):
    account = await patient_account(ASKER, clock.now)
    async with browser(portal) as client:
        await as_patient(portal, client, account, clock.now)
        asked = await ask(client, category="paid", message="I paid by check last week.")
        assert asked.status_code == 303
        assert "About your account in general." in (await client.get(asked.headers["location"])).text


async def test_bad_input_comes_back_with_what_was_typed(portal, clock, browser):
    account = await patient_account(ASKER, clock.now)
    async with browser(portal) as client:
        await as_patient(portal, client, account, clock.now)
        answer = await ask(client, category="", message="Kept words")
        assert answer.status_code == 422
        assert "Choose what your question is about." in answer.text
        assert "Kept words" in answer.text
        empty = await ask(client, message="  ")
        assert empty.status_code == 422
        assert "Tell us what you would like to know." in empty.text


async def test_someone_else_s_statement_line_or_question_is_not_found(portal, clock, browser):
    asker = await patient_account(ASKER, clock.now)
    other = await patient_account(OTHER, clock.now)
    others_statement, others_line = await a_line(portal, OTHER)
    async with browser(portal) as client:
        await as_patient(portal, client, other, clock.now)
        theirs = await ask(client, others_statement, others_line)
        their_path = theirs.headers["location"].split("?")[0]
    async with browser(portal) as client:
        await as_patient(portal, client, asker, clock.now)
        assert (await client.get(f"/questions/new?statement={others_statement}")).status_code == 404
        assert (await client.get(f"/questions/new?statement={others_statement}&line={others_line}")).status_code == 404
        assert (await ask(client, others_statement, others_line)).status_code == 404
        own_statement, _ = await a_line(portal, ASKER)
        assert (await client.get(f"/questions/new?statement={own_statement}&line=ln-nope")).status_code == 404
        assert (await client.get(their_path)).status_code == 404
        assert (await post(client, f"{their_path}/reply", {"message": "mine now"}, "/questions")).status_code == 404


async def test_a_staff_reply_reaches_the_patient_and_tells_them_but_a_note_never_shows(portal, clock, browser):
    account = await patient_account(ASKER, clock.now)
    staff = await staff_account(clock.now)
    async with browser(portal) as patient:
        await as_patient(portal, patient, account, clock.now)
        asked = await ask(patient, message="Why was I billed twice?")
        path = asked.headers["location"].split("?")[0]
        question_id = path.rsplit("/", 1)[1]
        async with browser(portal) as console:
            await as_staff(portal, console, staff, clock.now)
            staff_page = f"/console/questions/{question_id}"
            assert "Why was I billed twice?" in (await console.get(staff_page)).text
            note = await post(
                console, f"{staff_page}/messages", {"message": "Check the 835 first", "internal": "on"}, staff_page
            )
            reply = await post(
                console, f"{staff_page}/messages", {"message": "The second bill was a copy."}, staff_page
            )
            assert note.status_code == reply.status_code == 303
            assert "Check the 835 first" in (await console.get(staff_page)).text
        page = await patient.get(path)
        assert "The second bill was a copy." in page.text
        assert "Check the 835 first" not in page.text
        partial = await post(patient, f"{path}/reply", {"message": "Thanks"}, path, **{"HX-Request": "true"})
        assert "Check the 835 first" not in partial.text
        assert "Thanks" in partial.text
    question = await service.find(question_id)
    assert question["status"] == "open"  # the patient wrote back
    await jobs.run_once(portal.state["plugin_host"], portal.state["settings"])
    sent = [
        message for message in await portal.state["plugin_host"].notifier.recent() if message.to == account["email"]
    ]
    assert len(sent) == 1
    assert "replied to your question" in sent[0].text
    assert "The second bill was a copy." not in sent[0].text  # no PHI in the message
    assert f"/questions/{question_id}" in sent[0].text
    replies = (
        await QuestionMessage.select()
        .where(
            (QuestionMessage.question == question["id"]) & (QuestionMessage.from_staff == True)  # noqa: E712
        )
        .run()
    )
    assert [bool(row["notified_at"]) for row in replies if not row["internal"]] == [True]


async def test_the_queue_filters_and_puts_the_overdue_first(portal, clock, browser):
    account = await patient_account(ASKER, clock.now)
    supervisor = await staff_account(clock.now, role="supervisor")
    representative = await staff_account(clock.now)
    async with browser(portal) as patient:
        await as_patient(portal, patient, account, clock.now)
        old = (await ask(patient, category="insurance", message="Old one")).headers["location"].split("?")[0]
        clock.now += timedelta(hours=49)
        await as_patient(portal, patient, account, clock.now)
        new = (await ask(patient, category="amount", message="New one")).headers["location"].split("?")[0]
    old_id, new_id = old.rsplit("/", 1)[1], new.rsplit("/", 1)[1]
    async with browser(portal) as console:
        await as_staff(portal, console, supervisor, clock.now)
        queue = (await console.get("/console/questions")).text
        assert queue.index(old_id) < queue.index(new_id)
        assert "overdue" in queue
        overdue = (await console.get("/console/questions?overdue=true")).text
        assert old_id in overdue
        assert new_id not in overdue
        by_category = (await console.get("/console/questions?category=amount")).text
        assert new_id in by_category
        assert old_id not in by_category
        given = await post(
            console,
            f"/console/questions/{new_id}/assign",
            {"assignee": str(representative["public_id"])},
            f"/console/questions/{new_id}",
        )
        assert given.status_code == 303
    async with browser(portal) as console:
        await as_staff(portal, console, representative, clock.now)
        mine = (await console.get("/console/questions?assignee=me")).text
        assert new_id in mine
        assert old_id not in mine
        nobody = (await console.get("/console/questions?assignee=none")).text
        assert old_id in nobody
        assert new_id not in nobody
        # A representative may take a question, not give one to someone else.
        took = await post(
            console, f"/console/questions/{old_id}/assign", {"assignee": "me"}, f"/console/questions/{old_id}"
        )
        assert took.status_code == 303
        refused = await post(
            console,
            f"/console/questions/{old_id}/assign",
            {"assignee": str(supervisor["public_id"])},
            f"/console/questions/{old_id}",
        )
        assert refused.status_code == 403
        closed = await post(
            console, f"/console/questions/{old_id}/status", {"status": "closed"}, f"/console/questions/{old_id}"
        )
        assert closed.status_code == 303
        assert (await service.find(old_id))["status"] == "closed"
    actions = {
        row["action"]
        for row in await AuditEvent.select().where(AuditEvent.actor == f"account:{representative['public_id']}").run()
    }
    assert {"question.read", "question.assign", "question.status"} <= actions


async def test_patients_cannot_open_the_queue(portal, clock, browser):
    account = await patient_account(ASKER, clock.now)
    async with browser(portal) as client:
        await as_patient(portal, client, account, clock.now)
        assert (await client.get("/console/questions")).status_code == 403
