"""One row per EHR record the portal has read: its JSON and when it was read."""

from piccolo.columns import Text, Timestamptz, Varchar
from piccolo.table import Table


class Snapshot(Table):
    key = Varchar(length=200, unique=True)
    """What was read, e.g. ``statement:st-000123`` or ``statements:pt-000042``."""
    body = Text()
    """The record as :func:`carefront_sdk.codec.dumps` wrote it."""
    read_at = Timestamptz()
