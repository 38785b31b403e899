"""What a patient may pay now: the EHR's balances, less the payments it has not acknowledged yet.

Read through the statement snapshots (portal/billing/statements.py), so the pay page still renders
with an "as of" notice while the EHR is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from carefront_sdk.errors import NotFound
from carefront_sdk.models import Money, StatementSummary

from portal.billing.statements import statements_of
from portal.payments.ledger import unposted_total
from portal.plugin_host import PluginHost
from portal.snapshots.service import Read


@dataclass(frozen=True, slots=True)
class Owed:
    """The patient's balance, and one statement's when the payment is for a statement."""

    read: Read[tuple[StatementSummary, ...]]
    """The statements as read, for the page's "as of" notice."""
    balance: Money
    """Everything owed on every statement, less unposted payments."""
    statement: StatementSummary | None = None
    statement_owed: Money | None = None

    @property
    def limit(self) -> Money:
        """The most this payment may be: the statement's balance when there is one, else everything."""
        return self.statement_owed if self.statement_owed is not None else self.balance


async def owed(host: PluginHost, patient_id: str, statement_id: str | None, *, now: datetime) -> Owed:
    """What ``patient_id`` owes; ``NotFound`` when ``statement_id`` is not one of theirs."""
    read = await statements_of(host, patient_id, now=now)
    currency = read.value[0].balance.currency if read.value else "USD"
    billed = sum(max(summary.balance.amount, 0) for summary in read.value)
    unposted = await unposted_total(patient_id, currency=currency)
    balance = Money(max(billed - unposted.amount, 0), currency)
    if statement_id is None:
        return Owed(read, balance)
    statement = next((summary for summary in read.value if summary.id == statement_id), None)
    if statement is None:
        raise NotFound("statement", statement_id)
    on_statement = await unposted_total(patient_id, statement_id, currency=currency)
    statement_owed = Money(max(statement.balance.amount - on_statement.amount, 0), currency)
    return Owed(read, balance, statement, Money(min(statement_owed.amount, balance.amount), currency))
