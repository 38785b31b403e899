"""What the questions domain stores: each question and the messages of its thread."""

from piccolo.columns import UUID, Boolean, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table


class Question(Table, tablename="billing_question"):
    """A patient's question about a charge line, a statement or their account, and where it stands."""

    public_id = UUID(unique=True, index=True)
    """The id in links; the serial ``id`` stays internal."""
    patient_id = Varchar(length=64, index=True)
    """The EHR's patient the question is about (the one the asker acted for)."""
    statement_id = Varchar(length=64, null=True, default=None)
    line_id = Varchar(length=64, null=True, default=None)
    category = Varchar(length=32)
    """A code of portal.questions.service.CATEGORIES."""
    status = Varchar(length=16, default="open", index=True)
    """open, answered or closed."""
    assignee = Varchar(length=36, null=True, default=None, index=True)
    """The staff account (public id) working on it."""
    reply_by = Varchar(length=16, default="portal")
    """portal, or email: a copy of the reply by email as well."""
    due_at = Timestamptz(index=True)
    """When a reply is due under the service level."""
    created_at = Timestamptz()
    created_by = Varchar(length=36)
    """The account (public id) that asked: the patient, a proxy, or staff acting as the patient."""
    updated_at = Timestamptz()


class QuestionMessage(Table, tablename="billing_question_message"):
    """One message of a question's thread: the patient's, a staff reply, or a staff-only note."""

    question = ForeignKey(Question, on_delete=OnDelete.restrict, index=True)
    public_id = UUID(unique=True)
    author = Varchar(length=36)
    """The account (public id) that wrote it."""
    from_staff = Boolean(default=False)
    internal = Boolean(default=False)
    """A note for staff only: never shown to the patient."""
    body = Text()
    created_at = Timestamptz()
    notified_at = Timestamptz(null=True, default=None)
    """Staff replies: when the notifier accepted the "you have a reply" message."""
