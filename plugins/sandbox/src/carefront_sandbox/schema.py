"""The tables of the sandbox hospital's SQLite file: generated records and the mutations made later.

Money columns are integer cents. Dates are ISO ``YYYY-MM-DD`` text; instants are ISO UTC text
(sortable as text). Business rules that must hold across processes are UNIQUE constraints, so a
race is settled by the database, never by hoping one request arrives first.
"""

from __future__ import annotations

__all__ = ["INDEXES", "SCHEMA_VERSION", "TABLES"]

SCHEMA_VERSION = "1"

TABLES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE service_codes (
    id INTEGER PRIMARY KEY, code TEXT NOT NULL, code_system TEXT NOT NULL, description TEXT NOT NULL
);
CREATE TABLE departments (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE locations (id TEXT PRIMARY KEY, name TEXT NOT NULL, address TEXT NOT NULL, phone TEXT NOT NULL);
CREATE TABLE visit_types (
    id TEXT PRIMARY KEY, position INTEGER NOT NULL, name TEXT NOT NULL, duration_minutes INTEGER NOT NULL,
    bookable_online INTEGER NOT NULL, instructions TEXT NOT NULL, call_phone TEXT
);
-- Clinicians patients can book (in_catalog = 1), and the billing names of hospital departments.
CREATE TABLE providers (
    id INTEGER PRIMARY KEY, code TEXT UNIQUE NOT NULL, name TEXT NOT NULL, specialty TEXT NOT NULL,
    department_id INTEGER NOT NULL REFERENCES departments (id), in_catalog INTEGER NOT NULL,
    location_ids TEXT NOT NULL, visit_type_ids TEXT NOT NULL, day_off INTEGER NOT NULL
);

CREATE TABLE patients (
    id INTEGER PRIMARY KEY, mrn TEXT NOT NULL UNIQUE, given_name TEXT NOT NULL, family_name TEXT NOT NULL,
    name_key TEXT NOT NULL, birth_date TEXT NOT NULL, account_number TEXT NOT NULL, email TEXT, phone TEXT,
    language TEXT NOT NULL, address TEXT
);
CREATE TABLE related_persons (
    id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients (id), given_name TEXT NOT NULL,
    family_name TEXT NOT NULL, relationship TEXT NOT NULL, access TEXT NOT NULL, birth_date TEXT, email TEXT,
    proxy_patient_id INTEGER REFERENCES patients (id)
);
CREATE TABLE coverages (
    id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients (id), rank TEXT NOT NULL,
    payer_id TEXT NOT NULL, payer_name TEXT NOT NULL, plan_name TEXT NOT NULL, member_id TEXT NOT NULL,
    group_number TEXT, subscriber_name TEXT NOT NULL, subscriber_birth_date TEXT NOT NULL,
    relationship TEXT NOT NULL, starts_on TEXT NOT NULL, ends_on TEXT, removed INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE statements (
    id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients (id),
    account_number TEXT NOT NULL, statement_code TEXT NOT NULL UNIQUE, issued_on TEXT NOT NULL,
    due_on TEXT NOT NULL, total_charged INTEGER NOT NULL, insurance_paid INTEGER NOT NULL,
    adjustments INTEGER NOT NULL, patient_owes INTEGER NOT NULL, patient_paid INTEGER NOT NULL,
    currency TEXT NOT NULL,
    CHECK (patient_paid >= 0 AND patient_paid <= patient_owes)
);
CREATE TABLE visits (
    id INTEGER PRIMARY KEY, statement_id INTEGER NOT NULL REFERENCES statements (id),
    started_on TEXT NOT NULL, ended_on TEXT, kind TEXT NOT NULL,
    department_id INTEGER NOT NULL REFERENCES departments (id), provider_id INTEGER NOT NULL REFERENCES providers (id)
);
-- adjustments packs the line's CAS groups as "CO|45|1234|N381;PR|1|500|": one column instead of a
-- table with twice as many rows as the biggest table; only the EHR reads it, a statement at a time.
CREATE TABLE charge_lines (
    id INTEGER PRIMARY KEY, statement_id INTEGER NOT NULL REFERENCES statements (id),
    visit_id INTEGER NOT NULL REFERENCES visits (id), service_date TEXT NOT NULL,
    code_id INTEGER NOT NULL REFERENCES service_codes (id), provider_id INTEGER NOT NULL REFERENCES providers (id),
    quantity INTEGER NOT NULL, charged INTEGER NOT NULL, insurance_paid INTEGER NOT NULL,
    patient_owes INTEGER NOT NULL, adjustments TEXT NOT NULL
);
-- Patient payments against statements: history from the generator and postings from the portal.
CREATE TABLE patient_payments (
    id INTEGER PRIMARY KEY, statement_id INTEGER NOT NULL REFERENCES statements (id),
    amount INTEGER NOT NULL CHECK (amount > 0), paid_at TEXT NOT NULL, method TEXT NOT NULL,
    posting_reference TEXT
);
CREATE TABLE postings (
    reference TEXT PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients (id),
    gateway_reference TEXT NOT NULL UNIQUE, amount INTEGER NOT NULL, currency TEXT NOT NULL, posted_at TEXT NOT NULL
);

CREATE TABLE appointments (
    id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients (id), status TEXT NOT NULL,
    starts_at TEXT NOT NULL, ends_at TEXT NOT NULL, visit_type_id TEXT NOT NULL REFERENCES visit_types (id),
    provider_id INTEGER NOT NULL REFERENCES providers (id), location_id TEXT NOT NULL REFERENCES locations (id),
    slot_id TEXT, cancel_reason TEXT
);
-- One row per 20-minute cell of a provider's day held by a booked appointment: the primary key is
-- what makes one slot bookable once, across every process sharing the file.
CREATE TABLE slot_holds (
    provider_id INTEGER NOT NULL, cell TEXT NOT NULL, appointment_id INTEGER NOT NULL REFERENCES appointments (id),
    PRIMARY KEY (provider_id, cell)
) WITHOUT ROWID;

-- pending_card holds a test card's summary (never its number) while 3-D Secure is in progress.
CREATE TABLE checkouts (
    reference TEXT PRIMARY KEY, purpose TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,
    description TEXT NOT NULL, customer_reference TEXT NOT NULL, return_url TEXT NOT NULL,
    cancel_url TEXT NOT NULL, save_method INTEGER NOT NULL, metadata TEXT NOT NULL, status TEXT NOT NULL,
    pending_card TEXT, last_error TEXT, saved_method_reference TEXT, created_at TEXT NOT NULL
);
CREATE TABLE saved_methods (
    reference TEXT PRIMARY KEY, customer_reference TEXT NOT NULL, card TEXT NOT NULL, expires TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE gateway_payments (
    reference TEXT PRIMARY KEY, checkout_reference TEXT REFERENCES checkouts (reference), status TEXT NOT NULL,
    amount INTEGER NOT NULL, currency TEXT NOT NULL, card TEXT NOT NULL, failure_message TEXT,
    saved_method_reference TEXT REFERENCES saved_methods (reference), customer_reference TEXT NOT NULL,
    refunded INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,
    CHECK (refunded >= 0 AND refunded <= amount)
);
-- A checkout is paid at most once, however often its form is submitted.
CREATE UNIQUE INDEX gateway_payments_one_success ON gateway_payments (checkout_reference)
    WHERE status = 'succeeded';
CREATE TABLE refunds (
    reference TEXT PRIMARY KEY, payment_reference TEXT NOT NULL REFERENCES gateway_payments (reference),
    amount INTEGER NOT NULL, currency TEXT NOT NULL, reason TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL, delivered_at TEXT
);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY, channel TEXT NOT NULL, recipient TEXT NOT NULL, subject TEXT NOT NULL,
    text TEXT NOT NULL, html TEXT, language TEXT NOT NULL, accepted_at TEXT NOT NULL
);

CREATE TABLE idempotency (
    operation TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, result TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (operation, key)
) WITHOUT ROWID;
"""

INDEXES = """
CREATE INDEX patients_lookup ON patients (birth_date, name_key);
CREATE INDEX patients_account ON patients (account_number);
CREATE INDEX related_persons_patient ON related_persons (patient_id);
CREATE INDEX coverages_patient ON coverages (patient_id);
CREATE INDEX statements_patient ON statements (patient_id, issued_on);
CREATE INDEX visits_statement ON visits (statement_id);
CREATE INDEX charge_lines_statement ON charge_lines (statement_id);
CREATE INDEX patient_payments_statement ON patient_payments (statement_id);
CREATE INDEX appointments_patient ON appointments (patient_id, starts_at);
CREATE INDEX slot_holds_appointment ON slot_holds (appointment_id);
CREATE INDEX gateway_payments_checkout ON gateway_payments (checkout_reference);
CREATE INDEX messages_newest ON messages (accepted_at);
"""
"""Created after the bulk load: building an index once is much faster than maintaining it per row."""
