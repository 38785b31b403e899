"""What the portal keeps of appointments: its own bookings, the cancellations it sent, the reminders it sent.

The EHR stays the system of record for appointments; these rows say what the portal did, so that a
double submit books once, a cancellation reaches the EHR even after a failure, and each reminder goes
out once.
"""

from piccolo.columns import Integer, Timestamptz, Varchar
from piccolo.table import Table


class Booking(Table, tablename="scheduling_booking"):
    """One booking asked for through the portal, keyed by the confirm form's token."""

    idempotency_key = Varchar(length=64, unique=True)
    """From the confirm form: a double submit finds this row and books nothing more."""
    patient_id = Varchar(length=64, index=True)
    account_id = Varchar(length=64)
    """The public id of the account that booked: whom reminders go to."""
    slot_id = Varchar(length=200)
    replaces_appointment_id = Varchar(length=64, null=True, default=None)
    """Set on a reschedule: the appointment cancelled once this one is confirmed."""
    state = Varchar(length=16, default="pending", index=True)
    """pending (asked of the EHR), booked, refused (the EHR said no) or cancelled."""
    appointment_id = Varchar(length=64, null=True, default=None, index=True)
    starts_at = Timestamptz(null=True, default=None, index=True)
    created_at = Timestamptz()


class Cancellation(Table, tablename="scheduling_cancellation"):
    """A cancellation bound for the EHR through the outbox, and when the EHR acknowledged it."""

    appointment_id = Varchar(length=64, unique=True)
    patient_id = Varchar(length=64, index=True)
    idempotency_key = Varchar(length=100, unique=True)
    reason = Varchar(length=16)
    """patient (cancelled on the page) or rescheduled (replaced by a new booking)."""
    requested_at = Timestamptz()
    acknowledged_at = Timestamptz(null=True, default=None)


class Reminder(Table, tablename="scheduling_reminder"):
    """One reminder of one appointment, written before it is sent: the unique key makes it one."""

    key = Varchar(length=100, unique=True)
    """``<appointment id>:<hours before>``."""
    appointment_id = Varchar(length=64, index=True)
    hours_before = Integer()
    state = Varchar(length=16, default="sending")
    """sending, sent, or skipped (cancelled meanwhile, nobody to send to, or a nearer reminder is due)."""
    leased_until = Timestamptz(null=True, default=None)
    """A pass that dies while sending leaves the row to the next pass once this has passed."""
    created_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)
