"""The insurance companies a patient chooses from, and whether a member ID has its payer's shape.

The list is a file, not an adapter call: which payers a hospital accepts and how their cards read is
the hospital's own knowledge, kept by its staff, and no EHR or clearinghouse standard carries member
ID formats. ``payers.toml`` beside ``carefront.toml`` replaces the default shipped here (the sandbox
hospital's payers). A patient whose payer is not listed types its name; no format is checked then.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from portal.settings import Settings

DEFAULT_FILE = Path(__file__).with_name("payers.toml")
FILE_NAME = "payers.toml"


class PayerListError(Exception):
    """The payer file is not what the portal expects; the message names the entry and the key."""


@dataclass(frozen=True, slots=True)
class Payer:
    payer_id: str
    name: str
    member_id_pattern: re.Pattern[str] | None = None
    member_id_example: str | None = None
    has_groups: bool = True

    def fits(self, member_id: str) -> bool:
        """Does a normalised member ID have this payer's shape (any ID does when none is known)."""
        return self.member_id_pattern is None or self.member_id_pattern.fullmatch(member_id) is not None


def normal_member_id(text: str) -> str:
    """A member ID as payers compare it: upper case, without the spaces and dashes cards print."""
    return "".join(text.split()).replace("-", "").upper()


@dataclass(frozen=True, slots=True)
class PayerDirectory:
    payers: tuple[Payer, ...]

    def find(self, payer_id: str) -> Payer | None:
        return next((payer for payer in self.payers if payer.payer_id == payer_id), None)

    def search(self, text: str) -> tuple[Payer, ...]:
        """Payers whose name contains every word of ``text``, in list order; all of them for no text."""
        words = text.casefold().split()
        return tuple(payer for payer in self.payers if all(word in payer.name.casefold() for word in words))


def directory_for(settings: Settings) -> PayerDirectory:
    """The hospital's payer list when it has one beside its configuration, else the default."""
    own = settings.config_path.parent / FILE_NAME if settings.config_path else None
    return load(own if own is not None and own.is_file() else DEFAULT_FILE)


@lru_cache(maxsize=4)
def load(path: Path) -> PayerDirectory:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PayerListError(f"{path}: {error}") from None
    entries = document.get("payer", [])
    if not isinstance(entries, list):
        raise PayerListError(f"{path}: expected [[payer]] entries")
    payers = [_payer(path, index, entry) for index, entry in enumerate(entries, start=1)]
    ids = [payer.payer_id for payer in payers]
    if len(set(ids)) != len(ids):
        raise PayerListError(f"{path}: a payer_id is listed twice")
    return PayerDirectory(tuple(payers))


def _payer(path: Path, index: int, entry: object) -> Payer:
    where = f"{path}: payer {index}"
    if not isinstance(entry, dict):
        raise PayerListError(f"{where}: expected a table")
    unknown = set(entry) - {"payer_id", "name", "member_id_pattern", "member_id_example", "has_groups"}
    if unknown:
        raise PayerListError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    payer_id, name = entry.get("payer_id"), entry.get("name")
    if not isinstance(payer_id, str) or not payer_id.strip() or not isinstance(name, str) or not name.strip():
        raise PayerListError(f"{where}: payer_id and name must be non-empty text")
    pattern = entry.get("member_id_pattern")
    try:
        compiled = re.compile(pattern) if isinstance(pattern, str) else None
    except re.error as error:
        raise PayerListError(f"{where}: member_id_pattern is not a regular expression: {error}") from None
    example = entry.get("member_id_example")
    if compiled is not None and (not isinstance(example, str) or compiled.fullmatch(example) is None):
        raise PayerListError(f"{where}: member_id_example must be an ID that member_id_pattern accepts")
    has_groups = entry.get("has_groups", True)
    if not isinstance(has_groups, bool):
        raise PayerListError(f"{where}: has_groups must be true or false")
    return Payer(payer_id.strip(), " ".join(name.split()), compiled, example, has_groups)
