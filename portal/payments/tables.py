"""What the payments domain stores: the ledger of payment attempts, the gateway's events seen, pay links.

Never card data (PROMISES.md 9) and never a vendor's raw payload: the gateway's references, its
method summary ("Visa ending 4242") and the message it gave for a decline.
"""

from piccolo.columns import UUID, BigInt, Text, Timestamptz, Varchar
from piccolo.table import Table


class PaymentAttempt(Table, tablename="payment_attempt"):
    """One payment a patient (or a guest, or someone with a pay link) set out to make.

    The row is written before the gateway is called, under the idempotency key derived from the pay
    form's token (unique), so a double or concurrent submit finds this row and its one checkout.
    """

    public_id = UUID(unique=True, index=True)
    """The id receipts, return URLs and audit rows name."""
    idempotency_key = Varchar(length=200, unique=True)
    """Sent to the gateway when the checkout starts; derived from the pay form's token."""
    reference_number = Varchar(length=16, unique=True)
    """What the receipt prints and a caller reads out to the billing office."""
    patient_id = Varchar(length=64, index=True)
    statement_id = Varchar(length=64, null=True, default=None, index=True)
    """None when the payment is towards the whole balance."""
    amount = BigInt()
    """Minor units (cents)."""
    currency = Varchar(length=3, default="USD")
    status = Varchar(length=16, default="open", index=True)
    """open (checkout started, nothing taken), processing, succeeded, failed, or posted (the EHR has it)."""
    payer_kind = Varchar(length=16)
    """account, guest or pay_link: who was at the keyboard."""
    payer_account_id = Varchar(length=64, null=True, default=None)
    """The signed-in account's public id (the patient's own or a proxy's)."""
    pay_link_id = Varchar(length=64, null=True, default=None)
    language = Varchar(length=8, default="en")
    """The payer's language, for the emailed receipt."""
    receipt_email = Varchar(length=254, null=True, default=None)
    """An address a guest typed for the receipt; accounts use their own on file."""
    checkout_reference = Varchar(length=255, null=True, default=None)
    payment_reference = Varchar(length=255, null=True, default=None)
    """The gateway's reference of the charge itself, once there is one."""
    method = Varchar(length=32, null=True, default=None)
    method_summary = Varchar(length=120, null=True, default=None)
    failure_message = Text(null=True, default=None)
    """The gateway's message for the last decline, shown on the pay page."""
    posting_reference = Varchar(length=255, null=True, default=None)
    """The EHR's receipt reference once posted."""
    created_at = Timestamptz()
    settled_at = Timestamptz(null=True, default=None)
    """When the gateway's success was recorded."""
    posted_at = Timestamptz(null=True, default=None)
    receipt_sent_at = Timestamptz(null=True, default=None)
    checked_at = Timestamptz(null=True, default=None)
    """When the reconciliation job last asked the gateway about an unfinished attempt."""


class GatewayEvent(Table, tablename="gateway_event"):
    """A gateway notification already applied: its event id is unique, so a duplicate is ignored."""

    event_id = Varchar(length=255, unique=True)
    kind = Varchar(length=40)
    payment_reference = Varchar(length=255, null=True, default=None)
    received_at = Timestamptz()


class PayLink(Table, tablename="pay_link"):
    """A signed link a representative sent so a patient can pay one statement without signing in.

    The token itself is never stored: it carries this row's ``public_id`` and expiry, signed with
    the portal's secret. The row records who sent it and whether it has been used.
    """

    public_id = UUID(unique=True, index=True)
    patient_id = Varchar(length=64)
    statement_id = Varchar(length=64)
    channel = Varchar(length=8)
    """email or sms."""
    sent_by = Varchar(length=64)
    """The representative's account public id."""
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
