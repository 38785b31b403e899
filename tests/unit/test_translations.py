"""Every patient-facing text exists in English and Spanish (PROMISES.md 23).

The messages are extracted as ``pybabel extract -F babel.cfg`` would (the portal's Python and
templates, and every plugin's templates), and each must have a Spanish translation in
one of the portal/locale/es/LC_MESSAGES/*.po files (one per domain) that is neither empty nor fuzzy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from portal.i18n import load_catalogs, read_catalog

ROOT = Path(__file__).resolve().parents[2]
SPANISH = ROOT / "portal" / "locale" / "es" / "LC_MESSAGES"
SOURCE_FOLDERS = {"portal", "templates", "plugins"}

Key = tuple[str, str | None]


def _in_sources(dirname: str) -> bool:
    relative = Path(dirname).relative_to(ROOT)
    # Like babel's own filter, skip hidden and private folders (.venv, __pycache__).
    hidden = any(part.startswith((".", "_")) for part in relative.parts)
    return relative.parts[0] in SOURCE_FOLDERS and "node_modules" not in relative.parts and not hidden


@pytest.fixture(scope="module")
def extracted() -> dict[Key, list[str]]:
    """Every msgid (with its context) in the sources babel.cfg names, and where it is used."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config, "babel.cfg")
    found: dict[Key, list[str]] = {}
    for filename, line, message, _comments, context in extract_from_dir(
        ROOT, method_map, options_map, directory_filter=_in_sources
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault((msgid, context), []).append(f"{filename}:{line}")
    return found


@pytest.fixture(scope="module")
def spanish() -> Catalog:
    return read_catalog("es")


def test_extraction_reads_the_templates_and_the_code(extracted: dict[Key, list[str]]) -> None:
    # A broken babel.cfg would extract nothing and let the next test pass vacuously.
    places = {place.split(":")[0] for places in extracted.values() for place in places}
    assert "templates/base.html" in places
    assert any(place.startswith("portal/") and place.endswith(".py") for place in places)


def test_every_message_is_translated_into_spanish(extracted: dict[Key, list[str]], spanish: Catalog) -> None:
    problems = []
    for (msgid, context), places in sorted(extracted.items(), key=lambda item: item[1][0]):
        entry = spanish.get(msgid, context=context)
        strings = (
            entry.string
            if entry is not None and isinstance(entry.string, tuple)
            else (entry.string if entry is not None else "",)
        )
        if entry is None:
            problem = "missing"
        elif not all(strings):
            problem = "untranslated"
        elif entry.fuzzy:
            problem = "fuzzy"
        else:
            continue
        problems.append(f"{problem}: {msgid!r} (used at {', '.join(places)})")
    assert not problems, (
        f"{len(problems)} message(s) lack a Spanish translation in {SPANISH.relative_to(ROOT)}/*.po; see babel.cfg "
        "for the pybabel extract/update commands:\n" + "\n".join(problems)
    )


def test_spanish_placeholders_match_the_english(spanish: Catalog) -> None:
    # A translation that drops or renames %(phone)s would fail when the page renders.
    errors = [f"{message.id!r}: {'; '.join(map(str, found))}" for message, found in spanish.check()]
    assert not errors, "\n".join(errors)


def test_no_spanish_file_is_marked_fuzzy() -> None:
    for po_path in SPANISH.glob("*.po"):
        assert "#, fuzzy" not in po_path.read_text().split("msgid", 1)[0], f"{po_path.name}: gettext would ignore it"


def test_the_portal_serves_the_spanish_catalog() -> None:
    catalogs = load_catalogs(["en", "es"])
    assert catalogs["es"].gettext("Sign in") == "Iniciar sesión"
    assert catalogs["en"].gettext("Sign in") == "Sign in"
