"""Billing questions: asking, answering, assigning, and the representatives' work queue.

A service: no HTTP. Everything a patient reaches takes the patient the session acts for, and a
question of someone else's is ``NotFound``, exactly like a missing one (PROMISES.md 2). A staff reply
the patient should hear of is queued in the outbox with the reply itself, so the notice is sent once
the transaction commits and retried until the notifier takes it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carefront_sdk.errors import NotFound

from portal.database import transaction
from portal.i18n import N_
from portal.outbox.relay import enqueue
from portal.questions.tables import Question, QuestionMessage

CATEGORIES = {
    "unrecognised": N_("I don't recognise this charge"),
    "insurance": N_("Insurance should have paid"),
    "amount": N_("The amount looks wrong"),
    "paid": N_("I already paid"),
    "other": N_("Something else"),
}
STATUSES = {"open": N_("Open"), "answered": N_("Answered"), "closed": N_("Closed")}
REPLY_BY = {
    "email": N_("In the portal, and email me when there is a reply"),
    "portal": N_("In the portal only: I will check it myself"),
}
MAX_MESSAGE = 4000
"""Characters: a long letter, but not a file pasted in by mistake."""
REPLY_NOTICE = "question.reply_notice"
"""The outbox kind of the "you have a reply" message (portal.questions.notices)."""
PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class Asked:
    """What a patient asks: where it comes from, and their own words."""

    patient_id: str
    category: str
    message: str
    reply_by: str
    statement_id: str | None = None
    line_id: str | None = None


_UNTYPED = dict.fromkeys(code for code in range(0x20) if chr(code) not in "\t\n\r")


def plain(message: str) -> str:
    """A message as it is kept: trimmed, without the control characters no keyboard types (PostgreSQL
    refuses NUL in text); tabs and line breaks stay."""
    return message.translate(_UNTYPED).strip()


def problems(category: str, message: str, reply_by: str) -> dict[str, str]:
    """Field name to the English msgid of what is wrong with a question or a reply."""
    found = {}
    if category not in CATEGORIES:
        found["category"] = N_("Choose what your question is about.")
    if not plain(message):
        found["message"] = N_("Tell us what you would like to know.")
    elif len(message) > MAX_MESSAGE:
        found["message"] = N_("Please keep your message under 4,000 characters.")
    if reply_by not in REPLY_BY:
        found["reply_by"] = N_("Choose how you would like to hear back.")
    return found


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def ask(asked: Asked, *, asked_by: str, now: datetime, reply_within: timedelta) -> dict[str, Any]:
    """Store the question and its first message; returns the question."""
    async with transaction():
        (question,) = (
            await Question.insert(
                Question(
                    public_id=uuid.uuid4(),
                    patient_id=asked.patient_id,
                    statement_id=asked.statement_id,
                    line_id=asked.line_id,
                    category=asked.category,
                    status="open",
                    reply_by=asked.reply_by,
                    due_at=now + reply_within,
                    created_at=now,
                    created_by=asked_by,
                    updated_at=now,
                )
            )
            .returning(*Question.all_columns())
            .run()
        )
        await _add_message(question["id"], asked_by, plain(asked.message), now, from_staff=False)
    return question


async def _add_message(
    question_id: int, author: str, body: str, now: datetime, *, from_staff: bool, internal: bool = False
) -> dict[str, Any]:
    (message,) = (
        await QuestionMessage.insert(
            QuestionMessage(
                question=question_id,
                public_id=uuid.uuid4(),
                author=author,
                from_staff=from_staff,
                internal=internal,
                body=body,
                created_at=now,
            )
        )
        .returning(*QuestionMessage.all_columns())
        .run()
    )
    return message


async def questions_of(patient_id: str) -> list[dict[str, Any]]:
    """The patient's questions, newest first."""
    return (
        await Question.select()
        .where(Question.patient_id == patient_id)
        .order_by(Question.created_at, ascending=False)
        .run()
    )


async def question_of(patient_id: str, public_id: str) -> dict[str, Any]:
    """One of the patient's questions; ``NotFound`` when it is missing or someone else's."""
    question = await find(public_id)
    if question is None or question["patient_id"] != patient_id:
        raise NotFound("question", public_id)
    return question


async def find(public_id: str) -> dict[str, Any] | None:
    """Any patient's question (staff pages)."""
    if not _is_uuid(public_id):
        return None
    return await Question.select().where(Question.public_id == public_id).first().run()


async def thread(question_id: int, *, for_staff: bool) -> list[dict[str, Any]]:
    """The messages, oldest first; internal notes only for staff."""
    condition = QuestionMessage.question == question_id
    if not for_staff:
        condition &= QuestionMessage.internal == False  # noqa: E712 (Piccolo builds SQL from ==)
    return (
        await QuestionMessage.select()
        .where(condition)
        .order_by(QuestionMessage.created_at)
        .order_by(QuestionMessage.id)
        .run()
    )


async def patient_writes(question: dict[str, Any], author: str, body: str, now: datetime) -> None:
    """The patient adds to the thread: the question is open again for staff, a closed one included."""
    async with transaction():
        await _add_message(question["id"], author, plain(body), now, from_staff=False)
        await (
            Question.update({Question.status: "open", Question.updated_at: now})
            .where(Question.id == question["id"])
            .run()
        )


async def staff_writes(
    question: dict[str, Any], author: str, body: str, now: datetime, *, internal: bool, link: str, hospital: str
) -> dict[str, Any]:
    """A reply the patient sees (the question is then answered, and they are told if they asked to be),
    or an internal note only staff see."""
    async with transaction():
        message = await _add_message(question["id"], author, plain(body), now, from_staff=True, internal=internal)
        changes: dict[Any, Any] = {Question.updated_at: now}
        if not internal:
            changes[Question.status] = "answered"
        await Question.update(changes).where(Question.id == question["id"]).run()
        if not internal and question["reply_by"] == "email":
            await enqueue(
                REPLY_NOTICE,
                {
                    "message": str(message["public_id"]),
                    "patient_id": question["patient_id"],
                    "link": link,
                    "hospital": hospital,
                },
                f"{REPLY_NOTICE}:{message['public_id']}",
                now=now,
            )
    return message


async def assign(question: dict[str, Any], assignee: str | None, now: datetime) -> None:
    await (
        Question.update({Question.assignee: assignee, Question.updated_at: now})
        .where(Question.id == question["id"])
        .run()
    )


async def set_status(question: dict[str, Any], status: str, now: datetime) -> None:
    if status not in STATUSES:
        raise ValueError(status)
    await (
        Question.update({Question.status: status, Question.updated_at: now}).where(Question.id == question["id"]).run()
    )


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """The work queue's filters; empty means any. ``assignee`` is a staff public id, "me" resolved by
    the page, or "none" for questions nobody has taken."""

    status: str = ""
    category: str = ""
    assignee: str = ""
    overdue: bool = False
    page: int = 1


def is_overdue(question: dict[str, Any], now: datetime) -> bool:
    return question["status"] == "open" and question["due_at"] < now


async def queue(filters: QueueFilter, now: datetime) -> tuple[list[dict[str, Any]], bool]:
    """One page of questions matching ``filters``: open ones first, the longest overdue first; and
    whether there is a next page."""
    condition: Any = Question.id > 0
    if filters.status in STATUSES:
        condition &= Question.status == filters.status
    if filters.category in CATEGORIES:
        condition &= Question.category == filters.category
    if filters.assignee == "none":
        condition &= Question.assignee.is_null()
    elif filters.assignee:
        condition &= Question.assignee == filters.assignee
    if filters.overdue:
        condition &= (Question.status == "open") & (Question.due_at < now)
    return await _page(condition, max(1, filters.page))


async def _page(condition: Any, page: int) -> tuple[list[dict[str, Any]], bool]:
    """Open questions by due time (so the overdue lead), then the rest, most recently changed first."""
    is_open = Question.status == "open"
    open_count = await Question.count().where(condition & is_open).run()
    start, wanted = (page - 1) * PAGE_SIZE, PAGE_SIZE + 1  # one more tells whether a next page exists
    rows: list[dict[str, Any]] = []
    if start < open_count:
        rows += await (
            Question.select().where(condition & is_open).order_by(Question.due_at).offset(start).limit(wanted).run()
        )
    if len(rows) < wanted:
        rows += await (
            Question.select()
            .where(condition & (Question.status != "open"))
            .order_by(Question.updated_at, ascending=False)
            .offset(max(0, start - open_count))
            .limit(wanted - len(rows))
            .run()
        )
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


async def overdue_count(now: datetime) -> int:
    return await Question.count().where((Question.status == "open") & (Question.due_at < now)).run()
