"""The outbox: one row per change that must reach another system."""

from piccolo.columns import Integer, Text, Timestamptz, Varchar
from piccolo.table import Table


class OutboxMessage(Table):
    kind = Varchar(length=80)
    """Which delivery carries it, e.g. ``ehr.post_payment``."""
    idempotency_key = Varchar(length=200, unique=True)
    """Sent to the adapter with every try, so a retry never does the thing twice."""
    payload = Text()
    """JSON of ids and values the delivery needs; never the patient's name."""
    state = Varchar(length=16, default="pending", index=True)
    """pending, delivered or parked (given up on; staff are told)."""
    attempts = Integer(default=0)
    due_at = Timestamptz(index=True)
    leased_until = Timestamptz(null=True, default=None)
    """While a relay works on the row no other relay takes it; a crashed relay's lease runs out."""
    last_error = Text(default="")
    created_at = Timestamptz()
    delivered_at = Timestamptz(null=True, default=None)
