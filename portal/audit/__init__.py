"""Audit: an append-only, hash-chained record of who saw or changed what (PROMISES.md 8)."""
