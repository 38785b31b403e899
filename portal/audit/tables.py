"""The audit log (rows only ever added: triggers refuse UPDATE and DELETE), and the record of staff acting as patients."""

from piccolo.columns import JSON, UUID, Text, Timestamptz, Varchar
from piccolo.table import Table


class AuditEvent(Table, tablename="audit_event"):
    """One thing that happened to patient data or to a way in, and whether it was allowed.

    ``hash`` is SHA-256 over the previous row's hash and this row's fields, so editing, deleting or
    reordering any row breaks every hash after it (``carefront audit verify`` finds the first).
    """

    occurred_at = Timestamptz(index=True)
    """UTC."""
    actor = Varchar(length=64, index=True)
    """``account:<public id>``, ``guest``, ``anonymous`` or ``system``."""
    actor_role = Varchar(length=32)
    """patient, representative, supervisor, administrator, guest or anonymous."""
    acting_as = Varchar(length=64, null=True, default=None, index=True)
    """The EHR patient id whose data the actor saw as, when acting for or as a patient."""
    action = Varchar(length=64, index=True)
    """e.g. sign_in, statement.read, request.denied."""
    subject = Varchar(length=128, null=True, default=None)
    """What was acted on, as an id (never a name)."""
    outcome = Varchar(length=16)
    """allowed, denied, succeeded or failed."""
    address = Varchar(length=64, default="")
    detail = JSON(default="{}")
    """Identifiers and codes only: no PHI."""
    previous_hash = Varchar(length=64)
    hash = Varchar(length=64, unique=True)


class ActingSession(Table, tablename="acting_session"):
    """A member of staff acting as a patient (PROMISES.md 7): who, as whom, why, and how it ended.

    The audit log says what they did meanwhile (its rows carry ``acting_as``); this row keeps the
    reason, whose free text may name the patient's business and so stays out of the log itself.
    """

    public_id = UUID(unique=True, index=True)
    staff_account = Varchar(length=36, index=True)
    """The staff account's public id."""
    staff_role = Varchar(length=32)
    patient_id = Varchar(length=64, index=True)
    reason = Varchar(length=32)
    """A code of portal.console.acting.REASONS."""
    note = Text(default="")
    """What the representative typed about the call."""
    verified = Varchar(length=128)
    """The caller-verification checks ticked, comma-separated codes."""
    started_at = Timestamptz()
    ends_at = Timestamptz()
    ended_at = Timestamptz(null=True, default=None)
    ended_how = Varchar(length=16, default="")
    """ended (the End button), expired, or replaced (another act-as began)."""
