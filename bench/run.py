"""``python -m bench``: the portal measured against the budgets of PROMISES.md, one command.

For each database (SQLite, PostgreSQL) it loads the sandbox hospital at the chosen scale (generated
once into var/bench/ and copied for each run), starts the portal (``python -m bench.serve``) on
127.0.0.1, signs in as the demo personas, and measures each page of ``bench.pages.PAGES`` with wrk:
requests per second and p50/p99 at 1 and 32 connections, the same on the in-memory EHR
(bench/memory.py) for the ratio, and the compressed bytes of a first load (page and its assets) or
of an htmx partial. On PostgreSQL it then runs mixed journeys at 200 connections on 2 workers. Last,
Lighthouse (mobile preset, Debian's Chromium) on the front page, the dashboard and the 200-line
statement. Results: bench/results/latest.json and latest.md (a Markdown table), and a dated JSON.

Every load stays on 127.0.0.1 and ends by itself (wrk's -d).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.budgets import check_budgets
from bench.pages import PAGES, Page, Session
from portal.identity.demo_accounts import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).parent
CACHE = ROOT / "var" / "bench"
RESULTS = HERE / "results"
LUA = HERE / "journeys.lua"
LIGHTHOUSE = HERE / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = "/usr/bin/chromium"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SEED = 7
SECRET = "carefront-bench-secret-key-not-for-production-0123456789"
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
ASSET = re.compile(r'<(?:link[^>]+href|script[^>]+src)="(/static/[^"]+)"')


@dataclass
class Load:
    """One wrk run."""

    connections: int
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    """Answers other than 2xx/3xx, plus connections that failed or timed out (``socket_errors``)."""
    socket_errors: int = 0


@dataclass
class PageResult:
    name: str
    path: str | None = None
    skipped: str | None = None
    note: str = ""
    bytes_compressed: int | None = None
    """A full page: the page and every asset it links (first load); a partial: its own body."""
    loads: dict[str, Load] = field(default_factory=dict)
    """"1", "32": on the sandbox EHR; "memory 1", "memory 32": on the in-memory EHR."""

    def ratio(self, connections: int) -> float | None:
        real, memory = self.loads.get(str(connections)), self.loads.get(f"memory {connections}")
        if real is None or memory is None or not memory.requests_per_second:
            return None
        return real.requests_per_second / memory.requests_per_second


@dataclass
class BackendResult:
    database: str
    pages: list[PageResult] = field(default_factory=list)
    mixed: Load | None = None
    mixed_note: str = ""
    render: dict[str, Any] = field(default_factory=dict)
    """bench.render's figures: 200 charge lines rendered by the statement's template."""


def say(message: str) -> None:
    sys.stderr.write(f"bench: {message}\n")
    sys.stderr.flush()


# --- Data -------------------------------------------------------------------------------------------


def sandbox_file(size: int) -> Path:
    """The sandbox hospital of ``size`` patients, generated once and kept in var/bench/."""
    path = CACHE / f"sandbox-{SEED}-{size}.sqlite3"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        say(f"generating the sandbox hospital with {size:,} patients into {path} (once)")
        generate = Path(sys.executable).with_name("carefront-sandbox")
        # The day bills count back from is fixed, so a cached file gives the same pages every time.
        command = [generate, "generate", "--seed", str(SEED), "--size", str(size), "--out", path]
        subprocess.run([*command, "--today", "2026-01-15"], check=True)
    return path


@contextmanager
def postgres_server() -> Iterator[str]:
    """``CAREFRONT_BENCH_POSTGRES_URL``, or a throwaway PostgreSQL 15 cluster on a free loopback port."""
    if url := os.environ.get("CAREFRONT_BENCH_POSTGRES_URL"):
        yield url
        return
    root = Path(tempfile.mkdtemp(prefix="carefront-bench-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    data = root / "data"
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c max_connections=300"
    try:
        subprocess.run([*as_postgres, PG_BIN / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"],
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run([*as_postgres, PG_BIN / "pg_ctl", "start", "-D", data, "-w", "-l", root / "log", "-o", options],
                       check=True, capture_output=True)  # fmt: skip
        yield f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, PG_BIN / "pg_ctl", "stop", "-D", data, "-m", "fast", "-w"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def portal_database(backend: str, server: str | None, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'carefront.sqlite3'}"
        return
    assert server is not None
    name = f"carefront_bench_{os.getpid()}"
    psql = [PG_BIN / "psql", server, "--no-psqlrc", "-qc"]
    subprocess.run([*psql, f'DROP DATABASE IF EXISTS "{name}"'], check=True, capture_output=True)
    subprocess.run([*psql, f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        subprocess.run([*psql, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], capture_output=True)


def environment(database_url: str, data_dir: Path, port: int, size: int) -> dict[str, str]:
    config = data_dir / "carefront.toml"
    config.write_text(f"[adapters.sandbox]\nseed = {SEED}\nsize = {size}\n")
    return {
        **os.environ,
        "CAREFRONT_CONFIG": str(config),
        "DATABASE_URL": database_url,
        "CAREFRONT_DATA_DIR": str(data_dir),
        "CAREFRONT_SECRET_KEY": SECRET,
        "CAREFRONT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CAREFRONT_PLUGINS": "sandbox",
        "CAREFRONT_JOBS_IN_PROCESS": "false",
        "CAREFRONT_LOG_LEVEL": "WARNING",
    }


@contextmanager
def server(env: dict[str, str], port: int, *, memory: bool, workers: int = 1) -> Iterator[str]:
    command = [sys.executable, "-m", "bench.serve", "--port", str(port), "--workers", str(workers)]
    log = Path(env["CAREFRONT_DATA_DIR"]) / f"server-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, *(["--memory"] if memory else [])], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the bench server exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bench server did not get ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def personas(env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Open the demo accounts; label -> (patient id, email)."""
    answer = subprocess.run(
        [sys.executable, "-m", "bench.accounts"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    found = {}
    for line in answer.stdout.splitlines():
        label, patient_id, email = line.split("\t")
        found[label] = (patient_id, email)
    return found


def render_time(env: dict[str, str]) -> dict[str, Any]:
    """``python -m bench.render`` in the run's environment, before any server loads the machine."""
    answer = subprocess.run(
        [sys.executable, "-m", "bench.render"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(answer.stdout.splitlines()[-1]))


def sign_in(url: str, email: str) -> Session:
    """A signed-in patient. Cookies are kept by hand: the portal's are Secure, and this is plain HTTP on 127.0.0.1."""
    session = Session(url)
    form = session.get("/sign-in")
    token = CSRF.search(form.text)
    assert token, "the sign-in page has a CSRF token"
    answer = session.post("/sign-in", {"_csrf_token": token.group(1), "email": email, "password": DEMO_PASSWORD})
    if answer.status_code != 303:
        raise RuntimeError(f"signing in as {email} answered {answer.status_code}")
    return session


# --- Measuring --------------------------------------------------------------------------------------


def wrk(url: str, lines: list[str], connections: int, seconds: float, threads: int = 0, think_ms: str = "") -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(lines) + "\n")
    threads = threads or min(connections, 2)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(LUA), url]
    try:
        output = subprocess.run(
            command,
            env={**os.environ, "BENCH_REQUESTS": listing.name, "BENCH_THINK_MS": think_ms},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(listing.name)
    summary = json.loads(output.split("BENCH ", 1)[1])
    return Load(
        connections=connections,
        requests_per_second=round(summary["requests"] / summary["seconds"], 1),
        p50_ms=round(summary["p50_ms"], 2),
        p95_ms=round(summary["p95_ms"], 2),
        p99_ms=round(summary["p99_ms"], 2),
        errors=summary["non_2xx_3xx"] + summary["socket_errors"],
        socket_errors=summary["socket_errors"],
    )


def compressed_bytes(session: Session, path: str, htmx: bool) -> int:
    """What the wire carries: the body as sent (gzip or brotli), plus, on a full page, every asset it links."""
    page = session.get(path, htmx=htmx, compressed=True)
    total = page.num_bytes_downloaded
    if not htmx:
        for asset in sorted(set(ASSET.findall(page.text))):
            total += session.get(asset, compressed=True).num_bytes_downloaded
    return total


def measure_page(page: Page, sessions: dict[str, Session], url: str, seconds: float, result: PageResult, *,
                 memory: bool, connections: list[int]) -> None:  # fmt: skip
    session = sessions[page.persona]
    assert result.path is not None
    for _ in range(3):  # warm: snapshots, the in-memory EHR's answers, the template cache
        answer = session.get(result.path, htmx=page.htmx)
        if answer.status_code != 200:
            raise RuntimeError(f"{page.name}: {result.path} answered {answer.status_code}: {answer.text[:600]}")
    line = f"{session.cookie_header()}\t{'hx ' if page.htmx else ''}{result.path}"
    for count in connections:
        key = f"{'memory ' if memory else ''}{count}"
        result.loads[key] = wrk(url, [line], count, seconds)
        say(f"  {page.name} ({key} connections): {result.loads[key].requests_per_second} req/s")


def lighthouse(url: str, session: Session | None, out: Path) -> dict[str, int] | str:
    if not LIGHTHOUSE.exists():
        return "Lighthouse is not installed (cd bench && npm ci)"
    headers = json.dumps({"Cookie": session.cookie_header()}) if session else "{}"
    command = [
        LIGHTHOUSE, url, "--quiet", "--output=json", f"--output-path={out}", f"--extra-headers={headers}",
        "--only-categories=performance,accessibility,best-practices",
        "--chrome-flags=--headless --no-sandbox --disable-gpu --disable-background-networking",
    ]  # fmt: skip
    done = subprocess.run(command, env={**os.environ, "CHROME_PATH": CHROMIUM}, capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        return f"Lighthouse failed: {done.stderr.strip()[-300:]}"
    report = json.loads(out.read_text())
    return {name: round(category["score"] * 100) for name, category in report["categories"].items()}


# --- The run ----------------------------------------------------------------------------------------


def run_backend(
    backend: str, pg: str | None, args: argparse.Namespace, lighthouse_scores: dict[str, Any]
) -> BackendResult:
    result = BackendResult(backend)
    with tempfile.TemporaryDirectory(prefix=f"carefront-bench-{backend}-", dir=CACHE) as scratch:
        folder = Path(scratch)
        data_dir = folder / "data"
        data_dir.mkdir()
        shutil.copyfile(sandbox_file(args.size), data_dir / f"sandbox-{SEED}-{args.size}.sqlite3")
        with portal_database(backend, pg, folder) as database_url:
            port = free_port()
            env = environment(database_url, data_dir, port, args.size)
            subprocess.run([Path(sys.executable).with_name("carefront"), "migrate"], env=env, check=True,
                           capture_output=True)  # fmt: skip
            people = personas(env)
            result.render = render_time(env)
            say(f"  rendering 200 lines: {result.render['first_median_ms']} ms first, "
                f"{result.render['again_median_ms']} ms again")  # fmt: skip
            ports = {False: free_port(), True: free_port()}
            environments = {memory: environment(database_url, data_dir, ports[memory], args.size) for memory in ports}
            # Both servers run side by side, and each page is measured on one right after the other, so
            # the ratio compares two runs on the same machine state.
            with (
                server(environments[False], ports[False], memory=False) as sandbox_url,
                server(environments[True], ports[True], memory=True) as memory_url,
            ):
                served = {False: sandbox_url, True: memory_url}
                sessions = {
                    memory: {word: sign_in(url, email) for word, (_, email) in _by_word(people).items()}
                    for memory, url in served.items()
                }
                for page in PAGES:
                    page_result = PageResult(page.name)
                    result.pages.append(page_result)
                    for memory in (False, True):
                        # Found on each server: a form's CSRF token belongs to that server's session.
                        page_result.path, page_result.skipped, page_result.note = page.find(
                            sessions[memory][page.persona]
                        )
                        if page_result.skipped:
                            break
                        if not memory:
                            page_result.bytes_compressed = compressed_bytes(
                                sessions[memory][page.persona], page_result.path, page.htmx
                            )
                        measure_page(page, sessions[memory], served[memory], args.seconds, page_result,
                                     memory=memory, connections=args.connections)  # fmt: skip
                if backend == args.lighthouse_on and not args.no_lighthouse:
                    lighthouse_scores.update(run_lighthouse(sandbox_url, sessions[False], result, folder))
            if backend == "postgres":
                port = free_port()
                env = environment(database_url, data_dir, port, args.size)
                with server(env, port, memory=False, workers=2) as url:
                    result.mixed = mixed_journeys(url, people, result, args)
            else:
                result.mixed_note = "mixed journeys need 2 workers, so PostgreSQL: see the postgres run"
    for page_result in result.pages:
        if page_result.skipped:
            say(f"  {page_result.name}: skipped — {page_result.skipped}")
    return result


def _by_word(people: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """Demo personas by the word bench.pages uses for them."""
    words = {"balance": "emergency room", "plan": "payment plan", "parent": "parent", "inpatient": "200 lines"}
    return {word: next(v for label, v in people.items() if needle in label) for word, needle in words.items()}


def mixed_journeys(
    url: str, people: dict[str, tuple[str, str]], result: BackendResult, args: argparse.Namespace
) -> Load:
    """Every measured page, for several signed-in patients at once: ``--users`` people on 2 workers,
    each reading a page for ``--think-ms`` (uniformly at random) before asking for the next.

    A user is a person with a phone, not a connection that asks again the moment it is answered: a
    closed loop of 200 such connections measures the machine's saturation (the per-page loads at 32
    connections do that), not 200 people using the portal at once.
    """
    lines = []
    for word, (_, email) in _by_word(people).items():
        for _ in range(args.sessions_per_persona):
            session = sign_in(url, email)
            for page in PAGES:
                found = next(r for r in result.pages if r.name == page.name)
                if page.persona == word and found.path and not found.skipped:
                    # A form's body carries the CSRF token of the session that found it: each session finds its own.
                    path = page.find(session)[0] if "\t" in found.path else found.path
                    lines.append(f"{session.cookie_header()}\t{'hx ' if page.htmx else ''}{path}")
    say(f"  mixed journeys: {args.users} users thinking {args.think_ms} ms, {len(lines)} (session, page) pairs, "
        f"{args.mixed_seconds:g} s")  # fmt: skip
    return wrk(url, lines, args.users, args.mixed_seconds, threads=2, think_ms=args.think_ms)


def run_lighthouse(url: str, sessions: dict[str, Session], result: BackendResult, folder: Path) -> dict[str, Any]:
    scores: dict[str, Any] = {}
    long_statement = next((r for r in result.pages if r.name == "statement, 200 lines"), None)
    targets = [("front page", "/", None), ("dashboard", "/home", sessions["balance"])]
    if long_statement and long_statement.path:
        targets.append(("statement, 200 lines", long_statement.path, sessions["inpatient"]))
    for name, path, session in targets:
        say(f"  lighthouse: {name}")
        scores[name] = lighthouse(f"{url}{path}", session, folder / f"lighthouse-{len(scores)}.json")
    return scores


def write_results(report: dict[str, Any]) -> tuple[Path, Path]:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2)
    (RESULTS / f"bench-{stamp}.json").write_text(text)
    latest_json = RESULTS / "latest.json"
    latest_json.write_text(text)
    latest_md = RESULTS / "latest.md"
    latest_md.write_text(markdown(report))
    return latest_json, latest_md


def markdown(report: dict[str, Any]) -> str:
    lines = [f"Measured {report['measured_at']} on {report['machine']}; {report['size']:,} patients "
             f"({report['charge_lines']:,} charge lines); {report['seconds']:g} s per load.", ""]  # fmt: skip
    for backend in report["backends"]:
        lines += [f"### {backend['database']}", ""]
        lines.append(
            "| page | req/s @1 | p50/p99 ms @1 | req/s @32 | p50/p99 ms @32 | vs in-memory @1 | compressed bytes |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for page in backend["pages"]:
            if page["skipped"]:
                lines.append(f"| {page['name']} | skipped: {page['skipped']} | | | | | |")
                continue
            one, many = page["loads"].get("1"), page["loads"].get("32")
            ratio = page["ratio_1"]
            lines.append(
                f"| {page['name']}{' (' + page['note'] + ')' if page['note'] else ''} "
                f"| {_rps(one)} | {_latency(one)} | {_rps(many)} | {_latency(many)} "
                f"| {f'{ratio:.0%}' if ratio is not None else '-'} | {page['bytes_compressed'] or '-'} |"
            )
        mixed = backend["mixed"]
        lines.append("")
        if mixed:
            lines.append(f"Mixed journeys, {mixed['connections']} users on 2 workers, each reading a page "
                         f"{report['think_ms']} ms before the next: {mixed['requests_per_second']} req/s, "
                         f"p50 {mixed['p50_ms']} ms, p95 {mixed['p95_ms']} ms, {mixed['errors']} errors "
                         f"({mixed['socket_errors']} of them timeouts or failed connections).")  # fmt: skip
        else:
            lines.append(f"Mixed journeys: {backend['mixed_note']}.")
        lines.append("")
    if report["lighthouse"]:
        lines += [
            "### Lighthouse (mobile)",
            "",
            "| page | performance | accessibility | best practices |",
            "|---|---:|---:|---:|",
        ]
        for name, scores in report["lighthouse"].items():
            if isinstance(scores, str):
                lines.append(f"| {name} | {scores} | | |")
            else:
                lines.append(
                    f"| {name} | {scores.get('performance')} | {scores.get('accessibility')} | {scores.get('best-practices')} |"
                )
        lines.append("")
    lines += ["### Budgets (PROMISES.md)", "", "| budget | measured | verdict |", "|---|---|---|"]
    lines += [f"| {b['budget']} | {b['measured']} | {b['verdict']} |" for b in report["budgets"]]
    return "\n".join(lines) + "\n"


def _rps(load: dict[str, Any] | None) -> str:
    return "-" if load is None else f"{load['requests_per_second']:,.0f}"


def _latency(load: dict[str, Any] | None) -> str:
    return "-" if load is None else f"{load['p50_ms']:.1f} / {load['p99_ms']:.1f}"


def charge_lines(size: int) -> int:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(f"file:{sandbox_file(size)}?mode=ro", uri=True)) as connection:
        return int(connection.execute("SELECT count(*) FROM charge_lines").fetchone()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2_000, help="patients in the sandbox hospital (target: 100000)")
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=10, help="length of each load, in seconds")
    parser.add_argument("--connections", type=lambda text: [int(n) for n in text.split(",")], default=[1, 32])
    parser.add_argument("--users", type=int, default=200, help="people using the portal at once, on 2 workers")
    parser.add_argument("--think-ms", default="1000-5000", help="how long each user reads a page, low-high (ms)")
    parser.add_argument("--mixed-seconds", type=float, default=60)
    parser.add_argument("--sessions-per-persona", type=int, default=5)
    parser.add_argument("--lighthouse-on", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--no-lighthouse", action="store_true")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        say("wrk is missing: apt-get install wrk (make bench installs it)")
        return 2
    backends = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    CACHE.mkdir(parents=True, exist_ok=True)
    sandbox_file(args.size)
    scores: dict[str, Any] = {}
    results = []
    with postgres_server() if "postgres" in backends else _nothing() as pg:
        for backend in backends:
            say(f"{backend}: {args.size:,} patients")
            results.append(run_backend(backend, pg, args, scores))
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores",
        "size": args.size,
        "charge_lines": charge_lines(args.size),
        "seconds": args.seconds,
        "think_ms": args.think_ms,
        "backends": [
            {**asdict(r), "pages": [{**asdict(p), "ratio_1": p.ratio(1), "ratio_32": p.ratio(32)} for p in r.pages]}
            for r in results
        ],
        "lighthouse": scores,
    }
    report["budgets"] = check_budgets(report)
    latest_json, latest_md = write_results(report)
    sys.stdout.write(latest_md.read_text())
    say(f"written: {latest_json.relative_to(ROOT)}, {latest_md.relative_to(ROOT)}")
    return 0


@contextmanager
def _nothing() -> Iterator[None]:
    yield None
