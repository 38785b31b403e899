"""Payments: the ledger, the pay flow with the gateway, receipts, guest pay and pay links."""
