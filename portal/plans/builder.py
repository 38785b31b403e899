"""What the plan builder offers and proposes: the statements a plan may take, and the schedule a
patient's choices give under the policy. A service: no HTTP; the builder page calls it for the
preview and again, unchanged, to create the plan (so what was previewed is what is agreed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from portal.billing.balances import statements_due
from portal.billing.statements import statements_of
from portal.i18n import N_
from portal.payments.amounts import parse_amount
from portal.plans.agreements import LIVE, today_in
from portal.plans.schedule import Installment, Problem, build_schedule, down_payment, longest_allowed, max_months
from portal.plans.tables import PlanStatement
from portal.plugin_host import PluginHost
from portal.snapshots.service import Read

CHOOSE_STATEMENTS = N_("Choose at least one statement.")
CHOOSE_PAYMENT = N_("Choose how you will pay each installment.")
MUST_AGREE = N_("Read the agreement and tick the box to agree to it.")
MONTHS_NOT_A_NUMBER = N_("Choose a number of months.")


@dataclass(frozen=True, slots=True)
class Plannable:
    """A statement with something left to pay that no live plan holds."""

    statement_id: str
    issued_on: date
    due_on: date
    owed: int
    currency: str


@dataclass(frozen=True, slots=True)
class Choice:
    """The builder form as typed: statement ids, months or a monthly amount, the day, how to pay."""

    statements: tuple[str, ...] = ()
    mode: str = "months"
    months: str = ""
    monthly: str = ""
    day: str = ""
    payment: str = ""
    agree: bool = False

    @classmethod
    def from_form(cls, form: Mapping[str, Sequence[str]]) -> Choice:
        def one(name: str) -> str:
            values = form.get(name) or [""]
            return values[0].strip()[:40]

        return cls(
            statements=tuple(dict.fromkeys(value for value in form.get("statements", []) if value)),
            mode="monthly" if one("mode") == "monthly" else "months",
            months=one("months"),
            monthly=one("monthly"),
            day=one("day"),
            payment=one("payment"),
            agree=one("agree") == "yes",
        )


@dataclass(frozen=True, slots=True)
class Proposal:
    """The schedule the choice gives, or the errors (field -> (msgid, values)) that stop it."""

    balance: int
    longest: int
    schedule: list[Installment] = field(default_factory=list)
    errors: dict[str, tuple[str, dict[str, int]]] = field(default_factory=dict)
    down_payment: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.schedule)


def whole_number(text: str) -> int | None:
    """The count a person typed in ASCII digits, or None. Past six digits it is past every limit, so it
    counts as a million: ``int()`` refuses strings of more than 4,300 digits."""
    if not (text.isdigit() and text.isascii()):
        return None
    significant = text.lstrip("0") or "0"
    return int(significant) if len(significant) <= 6 else 1_000_000


async def plannable(host: PluginHost, patient_id: str, now: datetime) -> tuple[Read[object], list[Plannable]]:
    """The patient's statements (as read, for the "as of" notice) and those a new plan may take."""
    read = await statements_of(host, patient_id, now=now)
    owing = [summary for summary in read.value if summary.balance.amount > 0]
    held = {
        row["statement_id"]
        for row in await PlanStatement.select(PlanStatement.statement_id)
        .where((PlanStatement.plan.patient_id == patient_id) & PlanStatement.plan.status.is_in(list(LIVE)))
        .run()
    }
    dues = await statements_due(patient_id, owing, today_in(host.settings, now))
    return read, [
        Plannable(
            due.summary.id, due.summary.issued_on, due.summary.due_on, due.left_to_pay.amount, due.left_to_pay.currency
        )
        for due in dues
        if due.left_to_pay.amount > 0 and due.summary.id not in held
    ]


def propose(
    choice: Choice, offered: Sequence[Plannable], host: PluginHost, now: datetime, *, final: bool = False
) -> Proposal:
    """The schedule for ``choice``; ``final`` also asks for the way to pay and the agreement."""
    policy = host.settings.plans
    chosen = [item for item in offered if item.statement_id in choice.statements]
    balance = sum(item.owed for item in chosen)
    longest = longest_allowed(balance - down_payment(balance, policy), policy, max_months(balance, policy) or 0)
    errors: dict[str, tuple[str, dict[str, int]]] = {}
    if not chosen:
        errors["statements"] = (CHOOSE_STATEMENTS, {})
    months = monthly = None
    if choice.mode == "months":
        months = whole_number(choice.months)
        if months is None:
            errors["months"] = (MONTHS_NOT_A_NUMBER, {})
    else:
        parsed = parse_amount(choice.monthly)
        if parsed.problem:
            errors["monthly"] = (parsed.problem, {})
        monthly = parsed.amount
    day = whole_number(choice.day) or 0
    if final and choice.payment not in ("autopay", "manual"):
        errors["payment"] = (CHOOSE_PAYMENT, {})
    if final and not choice.agree:
        errors["agree"] = (MUST_AGREE, {})
    schedule: list[Installment] = []
    if chosen and not ({"months", "monthly"} & errors.keys()):
        built = build_schedule(
            balance, policy, day=day, start=today_in(host.settings, now), months=months, monthly=monthly
        )
        if isinstance(built, Problem):
            errors[built.field] = (built.message, dict(built.values))
        else:
            schedule = built
    return Proposal(balance, longest, schedule, errors, down_payment(balance, policy) if chosen else 0)
