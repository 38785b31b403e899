"""The demo personas: people a visitor to ``carefront demo`` can sign in as.

They are computed from the seed alone (no database needed), and the generator builds the same
people with the same bills, so each persona always demonstrates what its label says.
"""

from __future__ import annotations

from carefront_sdk.models import DemoPersona

from carefront_sandbox.generator import PERSONA_PATIENTS, PERSONA_STATEMENTS, Person, persona_people, plain_email
from carefront_sandbox.identifiers import format_id, mrn, statement_code

__all__ = ["demo_personas"]


def demo_personas(seed: int) -> list[DemoPersona]:
    """The personas of the sandbox hospital generated from ``seed``.

    The guarantor persona is the parent: name, email and birth date are the parent's, while
    ``patient_id``, ``mrn`` and ``statement_code`` are the child's (whose related persons list the
    parent as guardian, with the parent's own patient id).
    """
    people = persona_people(seed)

    def patient(role: str, label: str, person: Person, who: str, bill: str) -> DemoPersona:
        return DemoPersona(
            role=role,
            label=label,
            given_name=person.given_name,
            family_name=person.family_name,
            email=plain_email(person.given_name, person.family_name, "example.org"),
            birth_date=person.birth_date,
            mrn=mrn(seed, PERSONA_PATIENTS[who]),
            statement_code=statement_code(seed, PERSONA_STATEMENTS[bill]),
            patient_id=format_id("pt", PERSONA_PATIENTS[who] + 1),
        )

    def staff(role: str, label: str, person: Person) -> DemoPersona:
        return DemoPersona(
            role=role,
            label=label,
            given_name=person.given_name,
            family_name=person.family_name,
            email=plain_email(person.given_name, person.family_name, "staff.example.org"),
        )

    child = people["child"]
    return [
        patient(
            "patient", "A patient with a balance from an emergency room visit", people["balance"], "balance", "balance"
        ),
        patient(
            "patient",
            "A patient with a large balance after knee surgery, ready for a payment plan (prefers Spanish)",
            people["plan"],
            "plan",
            "plan",
        ),
        patient(
            "guarantor",
            f"A parent who pays for her child's care ({child.given_name}, a minor, after a broken wrist;"
            f" the MRN and statement code are {child.given_name}'s)",
            people["parent"],
            "child",
            "child",
        ),
        patient(
            "patient",
            "A patient back from a 16-night hospital stay: a statement of more than 200 lines",
            people["inpatient"],
            "inpatient",
            "inpatient",
        ),
        staff("representative", "A patient account representative who helps callers", people["representative"]),
        staff("supervisor", "A supervisor: reports and the audit trail", people["supervisor"]),
    ]
