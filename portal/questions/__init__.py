"""Billing questions: a patient asks about a charge, a statement or their account; staff answer."""
