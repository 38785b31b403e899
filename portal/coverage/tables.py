"""What the portal keeps of a patient's insurance: the changes it sent to the EHR, the answers of
eligibility checks, and card photos. Coverage itself lives in the EHR."""

from piccolo.columns import UUID, Boolean, Date, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table


class CoverageChangeRequest(Table, tablename="coverage_change"):
    """One add, update or remove of a coverage, asked for in the portal and sent to the EHR."""

    patient_id = Varchar(length=100, index=True)
    action = Varchar(length=10)
    """add, update or remove."""
    rank = Varchar(length=10)
    coverage_id = Varchar(length=100, null=True, default=None)
    """The EHR's id of the coverage updated or removed; None for an add."""
    payer_id = Varchar(length=40, default="")
    payer_name = Varchar(length=120, default="")
    plan_name = Varchar(length=120, default="")
    member_id = Varchar(length=40, default="")
    group_number = Varchar(length=40, default="")
    subscriber_name = Varchar(length=120, default="")
    subscriber_birth_date = Date(null=True, default=None)
    relationship = Varchar(length=10, default="self")
    idempotency_key = Varchar(length=80, unique=True)
    """The outbox message's key, sent to the EHR with every try."""
    requested_at = Timestamptz()
    requested_by = Varchar(length=80)
    """The audit actor who asked (``account:<id>``), never a name."""
    acknowledged_at = Timestamptz(null=True, default=None)
    stored_coverage_id = Varchar(length=100, null=True, default=None)
    """What the EHR answered: the coverage's id once stored (None after a removal)."""
    refused_code = Varchar(length=60, null=True, default=None)
    """The EHR's refusal code when it would not take the change."""


class EligibilityCheck(Table):
    """The clearinghouse's answer to one eligibility check (a 270/271), for the "last check" status."""

    patient_id = Varchar(length=100, index=True)
    rank = Varchar(length=10)
    coverage_id = Varchar(length=100, null=True, default=None)
    checked_at = Timestamptz()
    outcome = Varchar(length=12)
    """active, inactive or rejected."""
    rejection_code = Varchar(length=4, null=True, default=None)
    """AAA03 of a rejection, e.g. 72."""
    result = Text()
    """The EligibilityResult as carefront_sdk.codec wrote it."""


class CardPhoto(Table):
    """One side of an insurance card, re-encoded and sealed in a file under the data folder."""

    public_id = UUID(unique=True)
    """What the card's URL carries; the row id is never shown."""
    patient_id = Varchar(length=100, index=True)
    rank = Varchar(length=10)
    side = Varchar(length=5)
    """front or back."""
    file_name = Varchar(length=64, unique=True)
    """Random, under <data_dir>/card-photos; nothing the uploader sent."""
    media_type = Varchar(length=20)
    width = Integer()
    height = Integer()
    uploaded_at = Timestamptz()
    uploaded_by = Varchar(length=80)
    replaced = Boolean(default=False)
    """A newer photo of the same side, or the coverage's removal, took its place."""
