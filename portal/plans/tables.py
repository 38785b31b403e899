"""What the plans domain stores: the agreements, their installments, every charge attempt, the
changes made to a plan and the notices sent about it.

Ids and amounts only: never a name or a card number. Foreign keys never cascade deletes (billing
data outlives nothing by accident).
"""

from piccolo.columns import (
    UUID,
    BigInt,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class PaymentPlan(Table, tablename="payment_plan"):
    """An agreement to pay a balance in installments. At most one live (active or paused) plan per
    patient: a partial unique index in the migration."""

    public_id = UUID(unique=True, index=True)
    creation_key = Varchar(length=200, unique=True)
    """Derived from the builder form's token: a double submit finds this plan instead of making two."""
    patient_id = Varchar(length=64, index=True)
    account_number = Varchar(length=64)
    """The guarantor account the EHR posts the installments to."""
    holder_account_id = Varchar(length=64)
    """The portal account (the patient's or a proxy's) that agreed to it: notices go to it, in its language."""
    status = Varchar(length=16, default="active", index=True)
    """active, paused, completed, cancelled or defaulted."""
    total = BigInt()
    """Everything the plan was ever asked to pay, in minor units: the sum of its statements' amounts."""
    currency = Varchar(length=3, default="USD")
    day_of_month = Integer()
    autopay = Boolean(default=False)
    customer_reference = Varchar(length=64)
    """The opaque payer id the gateway knows this plan by (never a name or MRN)."""
    method_reference = Varchar(length=255, null=True, default=None)
    method_summary = Varchar(length=120, null=True, default=None)
    """As the gateway words it, e.g. "Visa ending 4242"."""
    method_checkout = Varchar(length=255, null=True, default=None)
    """The gateway's page saving a method for this plan, while the patient is on it."""
    missed_count = Integer(default=0)
    paused_until = Date(null=True, default=None)
    agreement_version = Varchar(length=16)
    created_at = Timestamptz()
    ended_at = Timestamptz(null=True, default=None)


class PlanStatement(Table, tablename="payment_plan_statement"):
    """A statement (or the whole balance: ``statement_id`` None) in a plan, and the amount it brought."""

    plan = ForeignKey(PaymentPlan, on_delete=OnDelete.restrict, index=True)
    statement_id = Varchar(length=64, null=True, default=None)
    amount = BigInt()
    added_at = Timestamptz()


class PlanInstallment(Table, tablename="payment_plan_installment"):
    """One amount due on one date. A recomputed schedule supersedes the unpaid ones and adds new rows,
    so an attempt always points at the installment it charged."""

    public_id = UUID(unique=True, index=True)
    plan = ForeignKey(PaymentPlan, on_delete=OnDelete.restrict, index=True)
    due_on = Date(index=True)
    amount = BigInt()
    down_payment = Boolean(default=False)
    status = Varchar(length=16, default="scheduled", index=True)
    """scheduled, paid, missed, skipped, superseded or cancelled."""
    attempts = Integer(default=0)
    """Charge attempts so far; the next one is number ``attempts + 1``."""
    next_attempt_at = Timestamptz(null=True, default=None, index=True)
    """When the runner may charge it (autopay): its date, then the retries after a decline."""
    leased_until = Timestamptz(null=True, default=None)
    """While one runner works on it no other does; a crashed runner's lease runs out."""
    reminded = Boolean(default=False)
    payment_id = Varchar(length=64, null=True, default=None)
    """The portal payment (the payments ledger's public id) that paid it."""
    paid_at = Timestamptz(null=True, default=None)
    failure_message = Text(null=True, default=None)
    """The gateway's message for the last decline, shown on the plan page."""


class InstallmentAttempt(Table, tablename="payment_plan_attempt"):
    """One charge of one installment, written (and committed) BEFORE the gateway is called.

    Its idempotency key is derived from the installment and the attempt number and is unique: a
    runner that finds a ``started`` attempt (its process died mid-call) sends the same request with
    the same key, and the gateway answers with the first call's result instead of charging again.
    """

    installment = ForeignKey(PlanInstallment, on_delete=OnDelete.restrict, index=True)
    number = Integer()
    idempotency_key = Varchar(length=200, unique=True)
    via = Varchar(length=16, default="saved_method")
    """saved_method (charged with the patient away) or checkout (the patient paying on the gateway's page)."""
    method_reference = Varchar(length=255)
    """The saved method charged; for a checkout, the gateway's checkout reference (empty until it answered)."""
    amount = BigInt()
    state = Varchar(length=16, default="started", index=True)
    """started (outcome unknown until the gateway answers), succeeded or declined."""
    payment_reference = Varchar(length=255, null=True, default=None)
    decline_code = Varchar(length=64, null=True, default=None)
    started_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)


class PlanChange(Table, tablename="payment_plan_change"):
    """The plan's history: what changed, who changed it (account public id) and, for staff, why."""

    plan = ForeignKey(PaymentPlan, on_delete=OnDelete.restrict, index=True)
    change = Varchar(length=32)
    """created, amount_changed, day_changed, statement_added, method_changed, paused, resumed, skipped,
    extended, cancelled, defaulted, completed, installment_paid, installment_declined, installment_missed."""
    actor = Varchar(length=80)
    """``account:<public id>``, or ``system`` for the installment runner."""
    staff = Boolean(default=False)
    reason = Text(default="")
    detail = Text(default="")
    """JSON of ids and amounts (no names)."""
    occurred_at = Timestamptz()


class PlanNotice(Table, tablename="payment_plan_notice"):
    """A message about a plan that the notifier acknowledged, under the outbox message's key."""

    idempotency_key = Varchar(length=200, unique=True)
    plan = ForeignKey(PaymentPlan, on_delete=OnDelete.restrict, index=True)
    kind = Varchar(length=32)
    delivery_reference = Varchar(length=255, null=True, default=None)
    sent_at = Timestamptz()
