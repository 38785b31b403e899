"""The payments domain's outbox messages and how each is delivered (merged in portal/jobs.py)."""

from __future__ import annotations

from portal.outbox.relay import Delivery
from portal.payments.receipts import deliver_receipt
from portal.payments.settlement import POST_PAYMENT, SEND_RECEIPT, deliver_posting

DELIVERIES: dict[str, Delivery] = {POST_PAYMENT: deliver_posting, SEND_RECEIPT: deliver_receipt}
