"""``carefront-sandbox generate``: build a sandbox hospital file outside the portal (benchmarks, demos)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from carefront_sandbox.generator import MINIMUM_SIZE, install_database

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carefront-sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="generate a sandbox hospital database")
    generate.add_argument("--seed", type=int, default=7, help="seed of the synthetic hospital (default 7)")
    generate.add_argument("--size", type=int, default=60, help=f"patients, at least {MINIMUM_SIZE} (default 60)")
    generate.add_argument("--out", type=Path, required=True, help="the SQLite file to write; must not exist")
    generate.add_argument(
        "--today", type=date.fromisoformat, default=date.today(), help="the day bills count back from"
    )
    generate.add_argument("--time-zone", default="America/Chicago", help="the hospital's IANA time zone")
    args = parser.parse_args(argv)
    if args.size < MINIMUM_SIZE:
        parser.error(f"--size must be at least {MINIMUM_SIZE}")
    if args.out.exists():
        parser.error(f"{args.out} exists; the sandbox never overwrites a hospital file")
    stats = install_database(args.out, seed=args.seed, size=args.size, today=args.today, time_zone=args.time_zone)
    if stats is None:
        parser.error(f"{args.out} was created by someone else meanwhile")
    print(
        f"{args.out}: {stats.patients:,} patients, {stats.statements:,} statements, {stats.visits:,} visits, "
        f"{stats.charge_lines:,} charge lines; {stats.rows:,} rows in {stats.seconds:.1f} s "
        f"({stats.rows_per_second:,.0f} rows/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
