"""Insurance: coverage on file (read from the EHR, changed through the outbox), card photos, and
eligibility checks explained in plain words."""
