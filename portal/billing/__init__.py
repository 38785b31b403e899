"""Statements: what the patient owes and why, read from the EHR through snapshots."""
