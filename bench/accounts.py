"""``python -m bench.accounts``: open the demo patients' accounts in the configured database, as
``carefront demo`` does, and print one line per persona: label, patient id and sign-in email
(tab-separated). The benchmark and tests/production sign in with them (password: DEMO_PASSWORD)."""

from __future__ import annotations

import asyncio
import sys

from portal import database
from portal.identity.demo_accounts import open_demo_accounts
from portal.plugin_host import PluginHost
from portal.settings import Settings


async def opened() -> list[tuple[str, str, str]]:
    settings = Settings.load()
    host = PluginHost.load(settings)
    engine = await database.connect(settings)
    try:
        return [
            (sign_in.persona.label, sign_in.persona.patient_id or "", sign_in.email)
            for sign_in in await open_demo_accounts(host, host.clock())
        ]
    finally:
        await database.disconnect(engine)


def main() -> None:
    for row in asyncio.run(opened()):
        sys.stdout.write("\t".join(row) + "\n")


if __name__ == "__main__":
    main()
