"""Sign-ins for the people a demo plugin offers, so ``carefront demo`` can be tried at once.

Patients get an account with a published demo password; the parent gets her guardian grant the way
a real parent does, through the EHR's record of her child's related persons. Staff sign in through
the sandbox's own OpenID provider, so they need nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carefront_sdk.models import DemoPersona, PatientQuery, ProxyAccess

from portal.identity import accounts, proxies
from portal.identity.passwords import hash_password
from portal.identity.sessions import Realm
from portal.plugin_host import PluginHost

DEMO_PASSWORD = "riverside demo visit"  # noqa: S105 (published on purpose)
"""Printed by ``carefront demo``: it guards synthetic people only."""


@dataclass(frozen=True, slots=True)
class DemoSignIn:
    persona: DemoPersona
    email: str


async def open_demo_accounts(host: PluginHost, now: datetime) -> list[DemoSignIn]:
    """Make (once) the account of every patient persona, and the parent's grant for her child."""
    opened = []
    for persona in host.demo_personas():
        if persona.role not in {"patient", "guarantor"} or persona.patient_id is None:
            continue
        holder_id = persona.patient_id if persona.role == "patient" else await _parent_of(host, persona.patient_id)
        if holder_id is None:
            continue
        account = await accounts.find_by_patient(holder_id) or await _open(host, holder_id, persona, now)
        if account is None:
            continue
        if persona.role == "guarantor":
            child = await host.ehr.read_patient(persona.patient_id)
            query = PatientQuery(child.given_name, child.family_name, child.birth_date, mrn=child.mrn)
            await proxies.add_minor(account, host.ehr, query, now, now.date())
        opened.append(DemoSignIn(persona, account["email"]))
    return opened


async def _parent_of(host: PluginHost, child_id: str) -> str | None:
    related = await host.ehr.list_related_persons(child_id)
    return next(
        (person.patient_id_of_proxy for person in related if person.access is ProxyAccess.GUARDIAN),
        None,
    )


async def _open(host: PluginHost, patient_id: str, persona: DemoPersona, now: datetime) -> dict[str, Any] | None:
    patient = await host.ehr.read_patient(patient_id)
    return await accounts.create(
        now,
        realm=Realm.PATIENT,
        patient_id=patient.id,
        given_name=patient.given_name,
        family_name=patient.family_name,
        email=persona.email,
        email_verified_at=now,
        password_hash=hash_password(DEMO_PASSWORD),
        language=patient.language,
    )
