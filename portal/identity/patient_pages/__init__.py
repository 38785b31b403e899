"""The patient's ways in and their own account: sign-up, sign-in, a forgotten password, sign-out
and the account page (the home page is ``portal.home``).

Controllers live beside the small services they use (matching a patient, sending codes, notices),
which know nothing of HTTP.
"""

from __future__ import annotations

from typing import Any

from portal.identity.patient_pages.account import AccountController
from portal.identity.patient_pages.forgotten_password import ForgottenPasswordController
from portal.identity.patient_pages.sign_in import SignInController, SignOutController
from portal.identity.patient_pages.sign_up import SignUpController

ROUTES: list[Any] = [
    SignUpController,
    SignInController,
    ForgottenPasswordController,
    SignOutController,
    AccountController,
]
