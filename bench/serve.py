"""One benchmark server: ``python -m bench.serve --port P [--memory] [--workers N]``.

The portal as ``carefront serve`` runs it, with the plugins given explicitly (the sandbox, plus the
in-memory EHR of bench/memory.py when ``--memory``), so the installed fhir/x12/stripe plugins and
their configuration play no part.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import carefront_sandbox.hooks
import uvicorn
from carefront_sdk.adapters import Port

from bench import memory
from portal.app import create_app
from portal.settings import Settings


def app_factory(in_memory: bool) -> object:
    settings = Settings.load()
    plugins: list[tuple[str, object]] = [("sandbox", carefront_sandbox.hooks)]
    if in_memory:
        plugins.append(("bench-memory", memory))
        settings = replace(
            settings,
            ports={**settings.ports, Port.EHR: memory.NAME},
            adapters={**settings.adapters, memory.NAME: settings.adapters.get("sandbox", {})},
        )
    return create_app(settings, plugins=plugins)


def memory_app() -> object:
    return app_factory(True)


def sandbox_app() -> object:
    return app_factory(False)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--memory", action="store_true", help="answer EHR reads from memory (bench/memory.py)")
    args = parser.parse_args()
    factory = "bench.serve:memory_app" if args.memory else "bench.serve:sandbox_app"
    # A user reading a page for up to 5 s keeps their connection, as the deploy/ nginx's 65 s keep-alive lets them in
    # production; uvicorn's default 5 s would close it under them (wrk counts that as an error).
    uvicorn.run(factory, factory=True, host="127.0.0.1", port=args.port, workers=args.workers, log_level="warning",
                timeout_keep_alive=75)  # fmt: skip


if __name__ == "__main__":
    main()
