"""Carefront: the patient self-service portal (the Litestar app)."""
