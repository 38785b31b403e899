"""The audit log's one table. Rows are only ever added: triggers refuse UPDATE and DELETE."""

from piccolo.columns import JSON, Timestamptz, Varchar
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
