"""What the identity domain stores."""

from piccolo.columns import Bytea, Timestamptz, Varchar
from piccolo.table import Table


class WebSession(Table, tablename="web_session"):
    """A server-side session: the browser holds only its random key (PROMISES.md 3)."""

    key = Varchar(length=64, unique=True, index=True)
    data = Bytea()
    created_at = Timestamptz()
    expires_at = Timestamptz(index=True)
