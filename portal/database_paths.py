"""Where each Piccolo app's migrations live (kept apart so app configs need not import the engine)."""

from pathlib import Path

_SOURCE = Path(__file__).resolve().parent.parent / "migrations"
# In a source checkout the migrations sit beside the package; a wheel carries them inside it.
MIGRATIONS_DIR = _SOURCE if _SOURCE.is_dir() else Path(__file__).resolve().parent / "migrations"


def migrations_folder(app_name: str) -> Path:
    return MIGRATIONS_DIR / app_name
