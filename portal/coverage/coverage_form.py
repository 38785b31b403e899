"""What a patient types about a coverage, checked: a payer from the list (or named), a member ID of
that payer's shape, and who the subscriber is when it is not the patient."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from carefront_sdk.models import Coverage, CoverageRank

from portal.coverage.changes import Details
from portal.coverage.payers import PayerDirectory, normal_member_id
from portal.i18n import N_

OTHER_PAYER = "other"
RELATIONSHIPS = {
    "self": N_("I am the subscriber (the card is in my name)"),
    "spouse": N_("My spouse or partner"),
    "child": N_("My parent (I am their child)"),
    "other": N_("Someone else"),
}
"""The patient's relationship to the subscriber, as X12 and FHIR name it, and how the form asks."""
RELATIONSHIP_WORDS = {
    "self": N_("You are the subscriber"),
    "spouse": N_("Spouse or partner"),
    "child": N_("Child of the subscriber"),
    "other": N_("Someone else"),
}
"""The same relationships as the insurance page states them."""
RANKS = {CoverageRank.PRIMARY: N_("Primary"), CoverageRank.SECONDARY: N_("Secondary")}
MEMBER_ID = re.compile(r"[A-Z0-9]{2,30}")
GROUP_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{0,39}")
LONGEST_NAME = 120


@dataclass
class CoverageForm:
    rank: str = ""
    payer_id: str = ""
    payer_name: str = ""
    plan_name: str = ""
    member_id: str = ""
    group_number: str = ""
    relationship: str = ""
    subscriber_name: str = ""
    subscriber_birth_date: str = ""

    @classmethod
    def of(cls, coverage: Coverage, directory: PayerDirectory) -> CoverageForm:
        """The form filled with a coverage on file, to update it."""
        listed = directory.find(coverage.payer_id) is not None
        relationship = coverage.relationship if coverage.relationship in RELATIONSHIPS else "other"
        is_self = relationship == "self"
        return cls(
            rank=coverage.rank.value,
            payer_id=coverage.payer_id if listed else OTHER_PAYER,
            payer_name="" if listed else coverage.payer_name,
            plan_name=coverage.plan_name,
            member_id=coverage.member_id,
            group_number=coverage.group_number or "",
            relationship=relationship,
            subscriber_name="" if is_self else coverage.subscriber_name,
            subscriber_birth_date="" if is_self else coverage.subscriber_birth_date.isoformat(),
        )


def read_details(form: CoverageForm, directory: PayerDirectory, today: date) -> tuple[Details | None, dict[str, str]]:
    """The checked details, or the errors by field (English msgids; a member ID error may be formatted)."""
    errors: dict[str, str] = {}
    rank = CoverageRank(form.rank) if form.rank in set(CoverageRank) else None
    if rank is None:
        errors["rank"] = N_("Choose whether this is your primary or secondary insurance.")
    payer = directory.find(form.payer_id)
    payer_name = " ".join(form.payer_name.split())
    if payer is None and form.payer_id != OTHER_PAYER:
        errors["payer_id"] = N_("Choose your insurance company.")
    elif payer is None and not payer_name:
        errors["payer_name"] = N_("Enter the name of your insurance company, as printed on your card.")
    elif len(payer_name) > LONGEST_NAME:
        errors["payer_name"] = N_("Enter the insurance company's name in 120 characters or fewer.")
    member_id = normal_member_id(form.member_id)
    if not member_id:
        errors["member_id"] = N_("Enter the member ID printed on your card.")
    elif MEMBER_ID.fullmatch(member_id) is None:
        errors["member_id"] = N_("A member ID has only letters and numbers. Check the ID on your card.")
    elif payer is not None and not payer.fits(member_id):
        errors["member_id"] = N_("%(payer)s member IDs look like %(example)s. Check the ID on your card.")
    group_number = " ".join(form.group_number.split())
    if group_number and GROUP_NUMBER.fullmatch(group_number) is None:
        errors["group_number"] = N_("A group number has only letters, numbers, spaces and dashes.")
    plan_name = " ".join(form.plan_name.split())
    if len(plan_name) > LONGEST_NAME:
        errors["plan_name"] = N_("Enter the plan's name in 120 characters or fewer.")
    relationship = form.relationship if form.relationship in RELATIONSHIPS else None
    if relationship is None:
        errors["relationship"] = N_("Choose whose name is on the card.")
    subscriber_name = " ".join(form.subscriber_name.split())
    subscriber_birth_date = None
    if relationship not in (None, "self"):
        if not subscriber_name:
            errors["subscriber_name"] = N_("Enter the subscriber's name, as printed on the card.")
        elif len(subscriber_name) > LONGEST_NAME:
            errors["subscriber_name"] = N_("Enter the subscriber's name in 120 characters or fewer.")
        subscriber_birth_date, problem = _birth_date(form.subscriber_birth_date, today)
        if problem:
            errors["subscriber_birth_date"] = problem
    if errors or rank is None or relationship is None:
        return None, errors
    return (
        Details(
            rank=rank,
            payer_id=payer.payer_id if payer else "",
            payer_name=payer.name if payer else payer_name,
            plan_name=plan_name,
            member_id=member_id,
            group_number=group_number if payer is None or payer.has_groups else "",
            relationship=relationship,
            subscriber_name="" if relationship == "self" else subscriber_name,
            subscriber_birth_date=subscriber_birth_date,
        ),
        {},
    )


def _birth_date(text: str, today: date) -> tuple[date | None, str | None]:
    if not text.strip():
        return None, N_("Enter the subscriber's date of birth.")
    try:
        born = date.fromisoformat(text.strip())
    except ValueError:
        return None, N_("Enter the subscriber's date of birth as year, month and day, like 1980-04-26.")
    if born > today or born.year < 1900:
        return None, N_("Enter a real date of birth.")
    return born, None
