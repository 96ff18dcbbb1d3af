"""The ``rorclient`` command line. Exit codes are documented in docs/cli.md."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from rorclient import __version__
from rorclient._interrupt import InterruptGuard
from rorclient._log_redaction import redact_text
from rorclient.config import Settings, ror_client
from rorclient.errors import ConfigError, RorError
from rorclient.models import EntityKind
from rorclient.store import redact_url
from rorclient.store.base import Store
from rorclient.store.registry import open_store, store_exists

__all__ = [
    "EXIT_BLOCKED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_RUN_FAILED",
    "EXIT_UNEXPECTED",
    "EXIT_UNKNOWN_IDENTIFIER",
    "main",
]

EXIT_OK = 0
#: A pull, sync or refresh that ran but failed (its report says why).
EXIT_RUN_FAILED = 1
#: The safety breaker stopped a run before it committed (same code as SafetyBreakerError).
EXIT_BLOCKED = 8
#: A sync or refresh that applied what it could but left establishments pending (see ``status``).
EXIT_PARTIAL = 10
#: A refresh named an establishment or unit neither the ROR nor the store knows (same code as
#: UnknownIdentifierError).
EXIT_UNKNOWN_IDENTIFIER = 11
EXIT_UNEXPECTED = 70
EXIT_INTERRUPTED = 130

logger = logging.getLogger("rorclient")

Handler = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return ConfigError.exit_code
    with _logging_to_stderr(args):
        try:
            settings = Settings.load(args.config, store_url=args.store, nomenclature=args.nomenclature)
            return handler(args, settings)
        except RorError as exc:
            print(f"rorclient: error: {redact_text(str(exc))}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("rorclient: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # e.g. `rorclient export | head`
            return EXIT_OK


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rorclient",
        description="Keep a local copy of the French ROR (health-offer directory) in sync.",
    )
    parser.add_argument("--version", action="version", version=f"rorclient {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML settings file (default: RORCLIENT_CONFIG or config.toml in the user config directory)",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="store URL: sqlite:///path, memory:// "
        "(default: RORCLIENT_STORE_URL, the config file, or the user data directory)",
    )
    parser.add_argument(
        "--nomenclature",
        metavar="PATH",
        help="ANS NOS export (.zip, directory or .tabs) used to label codes "
        "(default: RORCLIENT_NOMENCLATURE or the config file, else none)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress display and no summary: errors only (default: both, progress on a terminal only)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more logging on standard error (-v: info, -vv: debug; default: warnings and errors)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    load = commands.add_parser(
        "load",
        help="load open-data or extraction CSD files (xml, gzip, zip)",
        description="Load CSD files as the complete snapshot of one source: "
        "entities of that source missing from the files become tombstones. Like a pull, the load "
        "stops before committing (exit code 8) when it would delete or close too much (--force).",
    )
    load.add_argument("files", nargs="+", metavar="FILE", help="CSD files: .xml, .xml.gz or .zip")
    load.add_argument(
        "--source", default=None, help="source name stored with every entity (default: 'files')"
    )
    _readers_option(load, "a file")
    load.add_argument(
        "--force", action="store_true", help="commit even if the safety breaker trips (default: off)"
    )
    load.add_argument(
        "--dry-run", action="store_true", help="read and compare, commit nothing (default: commit)"
    )
    load.add_argument("--json", action="store_true", help="print the load report as JSON (default: one line)")
    load.set_defaults(handler=_cmd_load)

    export = commands.add_parser(
        "export", help="export the store, one JSON object per line", description="Fields: docs/export.md."
    )
    export.add_argument(
        "--format", choices=["jsonl"], default="jsonl", help="output format (default: %(default)s)"
    )
    export.add_argument(
        "--kind", choices=[kind.value for kind in EntityKind], help="only this kind (default: every kind)"
    )
    export.add_argument("--source", metavar="NAME", help="only this source's entities (default: all)")
    export.add_argument(
        "--live", action="store_true", help="leave out tombstones (deleted entities; default: kept)"
    )
    export.add_argument(
        "--full", action="store_true", help="add the whole entity under 'data' (default: summary fields)"
    )
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: standard output)")
    export.set_defaults(handler=_cmd_export)

    status = commands.add_parser("status", help="what the store holds and where each source stands")
    status.add_argument("--json", action="store_true", help="print the status as JSON (default: text)")
    status.set_defaults(handler=_cmd_status)

    changes = commands.add_parser("changes", help="the change log after a sequence number, as JSON lines")
    changes.add_argument(
        "--since",
        type=int,
        default=0,
        metavar="SEQ",
        help="changes after this sequence number (default: %(default)s, the whole log)",
    )
    changes.add_argument(
        "--limit", type=_positive_int, default=None, metavar="N", help="at most N changes (default: all)"
    )
    changes.set_defaults(handler=_cmd_changes)

    generate = commands.add_parser("generate", help="write a synthetic, schema-valid CSD extraction")
    generate.add_argument("output", metavar="FILE", help="file to write")
    generate.add_argument(
        "--establishments", type=int, default=20, metavar="N", help="establishments (default: %(default)s)"
    )
    generate.add_argument(
        "--seed", type=int, default=1, help="same seed, same document (default: %(default)s)"
    )
    generate.add_argument(
        "--compress", choices=["gzip", "zip"], default=None, help="compress the file (default: plain XML)"
    )
    generate.set_defaults(handler=_cmd_generate)

    cert = commands.add_parser("cert", help="certificate tools")
    cert_commands = cert.add_subparsers(title="cert commands", metavar="COMMAND")
    inspect = cert_commands.add_parser(
        "inspect",
        help="describe a certificate (PKCS#12, PEM or DER) and say whether it can authenticate a client",
        description="Exit code 0 when the certificate can authenticate a TLS client now; 54 expired, "
        "55 not yet valid, 56 unsuitable usage (e.g. seal-only); 50-53 when the file cannot be read.",
    )
    inspect.add_argument("file", metavar="FILE", help="certificate file (.p12/.pfx, .pem, .der)")
    inspect.add_argument(
        "--password-env", metavar="NAME", help="environment variable holding the password (default: none)"
    )
    inspect.add_argument("--password-file", metavar="FILE", help="file holding the password (default: none)")
    inspect.add_argument("--json", action="store_true", help="print the description as JSON (default: text)")
    inspect.set_defaults(handler=_cmd_cert_inspect)

    _add_sync_commands(commands)
    _add_breaker_commands(commands)
    _add_ror_commands(commands)

    sandbox = commands.add_parser(
        "sandbox",
        help="run a local ROR simulator (mTLS, SOAP, extraction) with generated data",
        description="Serves Notif, Lecture and the extraction over mutual TLS on 127.0.0.1 until "
        "interrupted. --write-config writes a client configuration (certificate, password file, "
        "URLs) that the other commands can use with --config.",
    )
    sandbox.add_argument(
        "--port", type=int, default=8443, help="port on 127.0.0.1; 0 picks a free one (default: %(default)s)"
    )
    sandbox.add_argument(
        "--seed", type=int, default=0, help="same seed, same generated region (default: %(default)s)"
    )
    sandbox.add_argument(
        "--establishments", type=int, default=200, metavar="N", help="establishments (default: %(default)s)"
    )
    sandbox.add_argument(
        "--tls-dir",
        metavar="DIR",
        help="where the test PKI is kept, reused if valid (default: sandbox-pki in the user data directory)",
    )
    sandbox.add_argument(
        "--write-config", metavar="FILE", help="write a ready client config (TOML) here (default: none)"
    )
    sandbox.add_argument(
        "--config-source",
        choices=("csd", "fhir", "both"),
        default="csd",
        help="which sources --write-config writes: CSD services, FHIR API, or both (default: %(default)s)",
    )
    sandbox.add_argument(
        "--test-mode", action="store_true", help="enable the /_sandbox/ control API (default: off)"
    )
    sandbox.set_defaults(handler=_cmd_sandbox)

    demo = commands.add_parser(
        "demo",
        help="start a sandbox, pull it, apply ROR changes through a sync, refresh a unit, show what changed",
        description="Runs into a store of its own (demo.sqlite3 in the user data directory, or --store), "
        "never the default store.",
    )
    demo.add_argument(
        "--establishments", type=int, default=25, metavar="N", help="establishments (default: %(default)s)"
    )
    demo.add_argument(
        "--seed", type=int, default=2026, help="same seed, same region and changes (default: %(default)s)"
    )
    demo.set_defaults(handler=_cmd_demo)
    return parser


def _add_sync_commands(commands: Any) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        _source_option(parser)
        parser.add_argument(
            "--dry-run", action="store_true", help="compute and report, commit nothing (default: commit)"
        )
        parser.add_argument(
            "--json", action="store_true", help="print the run report as JSON (default: a one-line summary)"
        )

    pull = commands.add_parser("pull", help="full pull: download the extraction and swap it in atomically")
    common(pull)
    pull.add_argument(
        "--force", action="store_true", help="commit even if the safety breaker trips (default: stop)"
    )
    _readers_option(pull, "a downloaded extraction")
    pull.set_defaults(handler=_cmd_pull)

    sync = commands.add_parser("sync", help="one delta cycle: Notif since the watermark, Lecture of each")
    common(sync)
    sync.add_argument(
        "--force", action="store_true", help="commit even if the safety breaker trips (default: stop)"
    )
    sync.set_defaults(handler=_cmd_sync)

    refresh = commands.add_parser("refresh", help="re-read one establishment or unit and replace its subtree")
    common(refresh)
    target = refresh.add_mutually_exclusive_group(required=True)
    target.add_argument("--establishment", metavar="ID", help="idNat_Struct of an establishment")
    target.add_argument("--unit", metavar="ID", help="identifiantOI of an internal organisation")
    refresh.add_argument(
        "--force", action="store_true", help="commit even if the safety breaker trips (default: stop)"
    )
    refresh.set_defaults(handler=_cmd_refresh)

    daemon = commands.add_parser(
        "daemon",
        help="sync on a schedule, with a weekly full pull, until stopped",
        description="Logs a start line and one line per run on standard error (plain text at INFO; "
        "-q: errors only, -v: debug, --log-json: JSON lines). Stops cleanly on SIGTERM or Ctrl-C.",
    )
    _source_option(daemon)
    daemon.add_argument(
        "--interval",
        default="15m",
        metavar="DURATION",
        help="time between runs, e.g. 30s, 15m, 1h (default: %(default)s)",
    )
    daemon.add_argument(
        "--full-every",
        default="7d",
        metavar="DURATION",
        help="full pull period, 0 or never for none (default: %(default)s)",
    )
    daemon.add_argument(
        "--health-file", metavar="PATH", help="JSON health file, rewritten after each run (default: none)"
    )
    daemon.add_argument(
        "--log-json", action="store_true", help="logs as JSON lines, one object per line (default: text)"
    )
    daemon.set_defaults(handler=_cmd_daemon)
    _add_metrics_options(daemon)


def _add_breaker_commands(commands: Any) -> None:
    breaker = commands.add_parser("breaker", help="show or release a source's latched safety breaker")
    breaker_commands = breaker.add_subparsers(title="breaker commands", metavar="COMMAND")
    show = breaker_commands.add_parser("show", help="list the latched breakers of the store")
    show.add_argument("--json", action="store_true", help="print the latches as JSON (default: text)")
    show.set_defaults(handler=_cmd_breaker_show)
    reset = breaker_commands.add_parser(
        "reset",
        help="release a latched breaker: the daemon applies the source again (check its answer first)",
    )
    reset.add_argument("--source", help="the source whose breaker to release (default: the only latched one)")
    reset.set_defaults(handler=_cmd_breaker_reset)
    accept = breaker_commands.add_parser(
        "accept", help="accept the changes the breaker stopped: the next run (the daemon's too) applies them"
    )
    accept.add_argument("--source", help="the source whose stopped changes to accept (default: the only one)")
    accept.set_defaults(handler=_cmd_breaker_accept)


def _add_ror_commands(commands: Any) -> None:
    ror = commands.add_parser("ror", help="call the ROR web services of a configured source directly")
    ror_commands = ror.add_subparsers(title="ror commands", metavar="COMMAND")

    with_source = _source_option

    notif = ror_commands.add_parser("notif", help="TR-Notif: establishments changed since a date-time")
    with_source(notif)
    notif.add_argument("--since", required=True, help="ISO 8601 date-time (naive = Paris local time)")
    notif.add_argument(
        "--activity",
        action="append",
        default=[],
        metavar="CODE",
        help="TRE_R227 filter, repeatable (default: none)",
    )
    notif.add_argument(
        "--patients",
        action="append",
        default=[],
        metavar="CODE",
        help="TRE_R239 filter, repeatable (default: none)",
    )
    notif.add_argument(
        "--json", action="store_true", help="print the entries as JSON (default: one identifier a line)"
    )
    notif.set_defaults(handler=_cmd_ror_notif)

    read = ror_commands.add_parser("read", help="TR_Lecture: the offer of one establishment or unit, as JSON")
    with_source(read)
    target = read.add_mutually_exclusive_group(required=True)
    target.add_argument("--establishment", metavar="ID", help="idNat_Struct of an establishment")
    target.add_argument("--unit", metavar="ID", help="identifiantOI of an internal organisation")
    read.add_argument(
        "--since", metavar="DATETIME", help="dateRef, establishment reads only (default: the whole offer)"
    )
    read.add_argument(
        "--activity",
        action="append",
        default=[],
        metavar="CODE",
        help="TRE_R227 filter, repeatable (default: none)",
    )
    read.add_argument(
        "--patients",
        action="append",
        default=[],
        metavar="CODE",
        help="TRE_R239 filter, repeatable (default: none)",
    )
    read.add_argument(
        "--restricted", action="store_true", help="restrictedOrganisation=1 (default: 0, the whole offer)"
    )
    read.set_defaults(handler=_cmd_ror_read)

    download = ror_commands.add_parser("download", help="download the extraction (resumes a cut download)")
    with_source(download)
    download.add_argument("dest", metavar="FILE", help="where to write the extraction")
    download.set_defaults(handler=_cmd_ror_download)

    check = ror_commands.add_parser("check", help="check the certificate and reach the ROR (one Notif)")
    with_source(check)
    check.set_defaults(handler=_cmd_ror_check)


def _source_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        metavar="NAME",
        help="name of a [[sources]] entry (default: the only csd source, else the only source)",
    )


@contextlib.contextmanager
def _logging_to_stderr(args: argparse.Namespace) -> Iterator[None]:
    """rorclient's logs on standard error as text while the command runs (the daemon sets its own:
    :func:`_cmd_daemon`); the ``rorclient`` logger is left as found (``main`` may run in-process)."""
    from rorclient._logging import SkipRunRecords, TextLogFormatter

    saved = list(logger.handlers), logger.level, logger.propagate
    level = (
        logging.ERROR if args.quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextLogFormatter())
    handler.addFilter(SkipRunRecords())
    for existing in saved[0]:
        logger.removeHandler(existing)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        for current in list(logger.handlers):
            logger.removeHandler(current)
        for previous in saved[0]:
            logger.addHandler(previous)
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def _store(settings: Settings) -> Store:
    return open_store(settings.store.url)


def _existing_store(settings: Settings) -> Store:
    """The store of a command that only reads: a SQLite file that does not exist is an error, not a new
    empty store (a typo in a path must not look like an empty ROR)."""
    _refuse_missing_store(settings)
    return open_store(settings.store.url)


def _refuse_missing_store(settings: Settings) -> None:
    url = settings.store.url
    if not store_exists(url):
        from rorclient.store.sqlite import path_from_url

        where = path_from_url(url) if url.startswith("sqlite:") else redact_url(url)
        raise ConfigError(f"no store at {where} (check --store, RORCLIENT_STORE_URL or [store] url)")


def _readers_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--readers",
        type=_positive_int,
        default=None,
        metavar="N",
        help=f"processes reading {what} of 32 MB or more in parallel (default: 2, 1 on a single core; "
        "1: read in this process)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# --------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------


def _cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    from rorclient.loader import DEFAULT_FILE_SOURCE, LoadProgress, load_files
    from rorclient.progress import ProgressLine

    source = args.source or DEFAULT_FILE_SOURCE
    with (
        InterruptGuard() as guard,
        _store(settings) as store,
        ProgressLine(enabled=not args.quiet) as line,
    ):

        def progress(where: LoadProgress) -> None:
            guard.check()  # an interrupt a C callback swallowed still stops the load before its swap
            line.update_load(where)

        report = load_files(
            store,
            args.files,
            source=source,
            progress=progress,
            readers=args.readers,
            force=args.force,
            dry_run=args.dry_run,
            options=settings.sync,
        )
    if args.json:
        print(report.model_dump_json(indent=2))
    elif not args.quiet:
        changed = ", ".join(f"{n} {kind}" for kind, n in report.counts.items() if n) or "no change"
        rate = report.bytes / 1e6 / report.seconds if report.seconds else 0.0
        readers = f", {report.readers} readers" if report.readers > 1 else ""
        verb = "would load (dry run, nothing committed)" if args.dry_run else "loaded"
        taken = "".join(
            f", taking over {n} live rows of source {was!r}" for was, n in sorted(report.takeovers.items())
        )
        print(
            f"{verb} {report.entities} entities from {len(report.files)} file(s) into source "
            f"{report.source!r} in {report.seconds:.1f} s ({rate:.1f} MB/s{readers}): {changed}{taken}"
        )
    return EXIT_OK


def _cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from rorclient.export import export_store

    nomenclatures = _nomenclatures(settings)
    kind = EntityKind(args.kind) if args.kind else None
    with ExitStack() as stack:
        store = stack.enter_context(_existing_store(settings))
        out: TextIO = sys.stdout
        if args.output:
            out = stack.enter_context(Path(args.output).open("w", encoding="utf-8"))
        export_store(
            store,
            out,
            kind=kind,
            source=args.source,
            include_deleted=not args.live,
            full=args.full,
            nomenclatures=nomenclatures,
        )
    return EXIT_OK


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    store_url = settings.store.url
    with _existing_store(settings) as store:
        stats = store.stats()
        states = store.sync_states()
        pending = store.pending()
        runs = store.runs(limit=5)
        latches = store.breaker_latches()
    status: dict[str, Any] = {
        "store": redact_url(settings.store.url),
        "entities": {kind.value: stats.by_kind.get(kind.value, 0) for kind in EntityKind},
        "sources": {
            state.source: {
                "entities": stats.by_source.get(state.source, 0),
                "watermark": state.watermark.isoformat() if state.watermark else None,
                "taken_at": state.taken_at.isoformat(),
                "last_full_pull": state.last_full_pull.isoformat() if state.last_full_pull else None,
            }
            for state in states
        },
        "deleted": stats.deleted,
        "last_change_seq": stats.last_change_seq,
        "pending": [item.model_dump(mode="json") for item in pending],
        "recent_runs": [run.model_dump(mode="json") for run in runs],
        "breakers": [latch.model_dump(mode="json") for latch in latches],
        "sync": [status.model_dump(mode="json") for status in _sync_statuses(settings, store_url)],
    }
    if args.json:
        print(json.dumps(status, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"store: {redact_url(settings.store.url)}")
    total = sum(stats.by_kind.values())
    print(f"entities: {total} live, {stats.deleted} tombstones, change log at seq {stats.last_change_seq}")
    for kind in EntityKind:
        print(f"  {kind.value:<14} {stats.by_kind.get(kind.value, 0):>9}")
    server_zone = settings.sync_options().server_timezone
    for state in states:
        print(
            f"source {state.source!r}: {stats.by_source.get(state.source, 0)} entities, "
            f"watermark {_when(state.watermark, server_zone)}, "
            f"last full pull {_when(state.last_full_pull, server_zone)}"
        )
    for sync_status in status["sync"]:
        certificate = sync_status.get("certificate")
        if certificate is not None:
            print(_certificate_line(sync_status["source"], certificate))
    for latch in latches:
        print(
            f"WARNING: {_latch_line(latch)} — nothing is applied from it until `rorclient sync --force` "
            "or `rorclient breaker reset`"
        )
    if pending:
        print(f"pending establishments: {len(pending)}")
    for run in runs:
        print(
            f"run {run.run_id[:8]} {run.operation:<6} {run.status:<8} {_when(run.started, 'UTC')} "
            f"{run.entities} entities" + (f" — {run.error}" if run.error else "")
        )
    return EXIT_OK


def _when(value: dt.datetime | None, naive_zone: str) -> str:
    """A time as ``status`` prints it, always with its zone: aware times in this machine's zone, naive
    ones (the ROR's watermark, in server time) labelled with ``naive_zone``."""
    if value is None:
        return "never"
    if value.tzinfo is None:
        zone = "local time" if naive_zone == "local" else naive_zone
        return f"{value:%Y-%m-%d %H:%M:%S} {zone}"
    local = value.astimezone()
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or local.strftime('%z')}"


def _certificate_line(source: str, certificate: dict[str, Any]) -> str:
    """The client certificate of a source as ``status`` prints it, with a warning when it must be renewed."""
    days = certificate["days_until_expiry"]
    line = (
        f"certificate of source {source!r}: {certificate['subject']}, valid until {certificate['not_after']}"
    )
    if certificate["expired"]:
        return f"{line} — WARNING: expired {-days} days ago, renew it"
    if certificate.get("not_yet_valid"):
        return f"{line} — WARNING: not valid yet (check this machine's clock)"
    if certificate["expires_soon"]:
        return f"{line} — WARNING: expires in {days} days, renew it"
    return f"{line} ({days} days left)"


def _sync_statuses(settings: Settings, store_url: str) -> list[Any]:
    """Where each configured source stands (certificate expiry included)."""
    if not settings.sources:
        return []
    from rorclient.sync import Sync

    statuses = []
    with open_store(store_url) as store:
        for source in settings.sources:
            try:
                with Sync.from_settings(settings, source=source.name, store=store) as sync:
                    statuses.append(sync.status())
            except RorError as exc:
                logger.warning("cannot report the status of source %r: %s", source.name, exc)
    return statuses


def _cmd_breaker_show(args: argparse.Namespace, settings: Settings) -> int:
    with _store(settings) as store:
        latches = store.breaker_latches()
    if args.json:
        print(json.dumps([latch.model_dump(mode="json") for latch in latches], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not latches:
        print("no latched safety breaker")
    for latch in latches:
        print(_latch_line(latch))
    return EXIT_OK


def _cmd_breaker_reset(args: argparse.Namespace, settings: Settings) -> int:
    with _store(settings) as store:
        source, latch = _latched(store, args.source)
        if latch is None:
            print(f"the safety breaker of source {source!r} is not latched: nothing to release")
            return EXIT_OK
        with store.transaction() as transaction:
            transaction.release_breaker(source)
    logger.warning("safety breaker of source %r released by an operator (run %s)", source, latch.run_id)
    print(f"released: {_latch_line(latch)}")
    return EXIT_OK


def _cmd_breaker_accept(args: argparse.Namespace, settings: Settings) -> int:
    with _store(settings) as store:
        source, latch = _latched(store, args.source)
        if latch is None:
            print(f"the safety breaker of source {source!r} is not latched: nothing to accept")
            return EXIT_OK
        latch = latch.model_copy(update={"accepted": True})
        with store.transaction() as transaction:
            transaction.latch_breaker(latch)
    logger.warning("source %r: an operator accepted the changes of blocked run %s", source, latch.run_id)
    print(f"accepted (the next pull or sync applies them, forced): {_latch_line(latch)}")
    return EXIT_OK


def _latched(store: Store, source: str | None) -> tuple[str, Any]:
    """The source named (or the only latched one) and its latch (``None``: not latched)."""
    latched = {latch.source: latch for latch in store.breaker_latches()}
    if source is None:
        if len(latched) != 1:
            names = ", ".join(sorted(latched)) or "none"
            raise ConfigError(f"name the source with --source (latched breakers: {names})")
        (source,) = latched
    return source, latched.get(source)


def _latch_line(latch: Any) -> str:
    return (
        f"source {latch.source!r}: safety breaker latched since {latch.tripped_at:%Y-%m-%d %H:%M:%S} by "
        f"{latch.operation} run {latch.run_id[:8]} ({latch.deletions} deletions + {latch.closures} closures "
        f"over a limit of {latch.limit}, {latch.live} live)"
        + (" — accepted: the next run applies them" if latch.accepted else "")
    )


def _cmd_changes(args: argparse.Namespace, settings: Settings) -> int:
    if args.since < 0:
        raise ConfigError("--since must be a sequence number ≥ 0")
    with _existing_store(settings) as store:
        for change in store.changes(since=args.since, limit=args.limit):
            print(change.model_dump_json())
    return EXIT_OK


def _cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from rorclient.sandbox.dataset import write_extraction

    if args.establishments < 1:
        raise ConfigError("--establishments must be at least 1")
    write_extraction(
        Path(args.output), seed=args.seed, establishments=args.establishments, compress=args.compress
    )
    if not args.quiet:
        size = Path(args.output).stat().st_size
        print(f"wrote {args.output}: {args.establishments} establishments, {size / 1e6:.1f} MB")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from rorclient.demo import run_demo

    return run_demo(
        settings, establishments=args.establishments, seed=args.seed, quiet=args.quiet, store_url=args.store
    )


def _cmd_cert_inspect(args: argparse.Namespace, settings: Settings) -> int:
    from rorclient import tls

    info = tls.inspect_certificate(
        args.file, password_env=args.password_env, password_file=args.password_file
    )
    if args.json:
        print(info.model_dump_json(indent=2))
    else:
        verdict = (
            "can authenticate a TLS client" if info.can_authenticate_tls_client else "CANNOT authenticate"
        )
        print(f"subject:   {info.subject}")
        print(f"issuer:    {info.issuer}")
        print(f"serial:    {info.serial_number}")
        print(
            f"validity:  {info.not_before:%Y-%m-%d} → {info.not_after:%Y-%m-%d} "
            f"({info.days_until_expiry} days left)" + ("  — RENEW NOW" if info.expires_soon else "")
        )
        usage, extended = ", ".join(info.key_usage) or "-", ", ".join(info.extended_key_usage) or "-"
        print(f"key usage: {usage}; extended: {extended}")
        print(f"key:       {info.public_key}; private key in file: {'yes' if info.has_private_key else 'no'}")
        print(f"sha256:    {info.fingerprint_sha256}")
        print(f"verdict:   {verdict}" + "".join(f"\n  - {problem}" for problem in info.problems))
    if info.expired:
        return tls.CertificateExpiredError.exit_code
    if info.not_yet_valid:
        return tls.CertificateNotYetValidError.exit_code
    if not info.can_authenticate_tls_client:
        return tls.CertificateUsageError.exit_code
    return EXIT_OK


def _run_sync(args: argparse.Namespace, settings: Settings, operation: str) -> int:
    from rorclient.progress import ProgressLine
    from rorclient.sync import RunStatus, Sync

    source = _sync_source(args, settings).name
    if args.dry_run:  # a dry run only reads the store: it creates none
        _refuse_missing_store(settings)
    options = settings.sync_options(readers=getattr(args, "readers", None))
    with (
        Sync.from_settings(settings, source=source, options=options) as sync,
        ProgressLine(enabled=not args.quiet) as line,
    ):
        if operation == "pull":
            report = sync.pull(force=args.force, dry_run=args.dry_run, progress=line.update)
        elif operation == "sync":
            report = sync.sync(force=args.force, dry_run=args.dry_run, progress=line.update)
        else:
            report = sync.refresh(
                establishment=args.establishment, unit=args.unit, force=args.force, dry_run=args.dry_run
            )
    if args.json:
        print(report.model_dump_json(indent=2))
    elif not args.quiet:
        print(report.summary())
    if report.status is RunStatus.INTERRUPTED:
        return EXIT_INTERRUPTED
    if report.status is RunStatus.BLOCKED:
        return EXIT_BLOCKED
    if report.status is RunStatus.FAILED:
        return EXIT_RUN_FAILED
    if report.status is RunStatus.PARTIAL:
        # `rorclient sync && next-step` must not go on with a store it believes complete.
        print(
            f"rorclient: {report.pending} establishment(s) pending: the store is not complete "
            "(see `rorclient status`; they are retried first next cycle)",
            file=sys.stderr,
        )
        return EXIT_PARTIAL
    return EXIT_OK


def _cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    return _run_sync(args, settings, "pull")


def _cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    return _run_sync(args, settings, "sync")


def _cmd_refresh(args: argparse.Namespace, settings: Settings) -> int:
    return _run_sync(args, settings, "refresh")


def _cmd_daemon(args: argparse.Namespace, settings: Settings) -> int:
    from rorclient.daemon import DaemonOptions, configure_logging, parse_duration, run_daemon

    # A start line and one line per run: INFO by default, as text unless --log-json.
    level = logging.ERROR if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    configure_logging(json_lines=args.log_json, level=level)
    full_every = None if args.full_every in ("0", "never") else parse_duration(args.full_every)
    if args.metrics_port is not None:
        from rorclient.metrics import require_prometheus_client

        require_prometheus_client()  # before anything starts: say at once that the extra is missing
        if not 0 <= args.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port must be between 0 and 65535, not {args.metrics_port}")
    options = DaemonOptions(
        interval=parse_duration(args.interval),
        full_every=full_every,
        health_file=Path(args.health_file) if args.health_file else None,
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
    )
    return run_daemon(settings, options, source=_sync_source(args, settings).name)


def _cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from rorclient.sandbox import serve_forever

    if args.establishments < 1:
        raise ConfigError("--establishments must be at least 1")
    serve_forever(
        port=args.port,
        seed=args.seed,
        establishments=args.establishments,
        tls_dir=Path(args.tls_dir) if args.tls_dir else None,
        write_config=Path(args.write_config) if args.write_config else None,
        config_kinds=("csd", "fhir") if args.config_source == "both" else (args.config_source,),
        test_mode=args.test_mode,
        announce=lambda line: print(line, flush=True),
    )
    return EXIT_OK


def _sync_source(args: argparse.Namespace, settings: Settings) -> Any:
    """The source a pull, sync, refresh or daemon drives: ``--source``, else the only csd source, else
    the only source."""
    if args.source or any(source.kind == "csd" for source in settings.sources) or len(settings.sources) != 1:
        return _csd_source(args, settings)
    return settings.sources[0]


def _csd_source(args: argparse.Namespace, settings: Settings) -> Any:
    if args.source:
        return settings.source(args.source)
    csd_sources = [source for source in settings.sources if source.kind == "csd"]
    if len(csd_sources) != 1:
        names = ", ".join(source.name for source in csd_sources) or "none configured"
        raise ConfigError(f"name the source with --source (csd sources: {names})")
    return csd_sources[0]


def _add_metrics_options(daemon: argparse.ArgumentParser) -> None:
    daemon.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on http://ADDRESS:PORT/metrics (needs rorclient[metrics]; "
        "default: off)",
    )
    daemon.add_argument(
        "--metrics-address",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address the metrics endpoint listens on (default: 127.0.0.1; 0.0.0.0: every interface)",
    )


def _cmd_ror_notif(args: argparse.Namespace, settings: Settings) -> int:
    with ror_client(_csd_source(args, settings), retry=settings.sync.retry) as client:
        entries = client.changed_establishment_entries(
            args.since, activity=tuple(args.activity), patients=tuple(args.patients)
        )
    if args.json:
        print(json.dumps([entry.model_dump(mode="json") for entry in entries], indent=2))
    else:
        for entry in entries:
            print(entry.establishment_id)
    return EXIT_OK


def _cmd_ror_read(args: argparse.Namespace, settings: Settings) -> int:
    with ror_client(_csd_source(args, settings), retry=settings.sync.retry) as client:
        if args.unit:
            offer = client.read_unit(args.unit)
        else:
            offer = client.read_establishment(
                args.establishment,
                since=args.since,
                activity=tuple(args.activity),
                patients=tuple(args.patients),
                restricted=args.restricted,
            )
    print(offer.model_dump_json(indent=2))
    return EXIT_OK


def _cmd_ror_download(args: argparse.Namespace, settings: Settings) -> int:
    from rorclient.progress import ProgressLine

    with (
        ror_client(_csd_source(args, settings), retry=settings.sync.retry) as client,
        ProgressLine(enabled=not args.quiet) as line,
    ):
        result = client.download_extraction(args.dest, progress=line.update_download)
    print(result.model_dump_json(indent=2))
    return EXIT_OK


def _cmd_ror_check(args: argparse.Namespace, settings: Settings) -> int:
    source = _csd_source(args, settings)
    with ror_client(source, retry=settings.sync.retry) as client:
        info = client.certificate
        client.changed_establishments(dt.datetime.now())
    expiry = f", certificate valid until {info.not_after:%Y-%m-%d}" if info else ""
    print(f"source {source.name!r}: the ROR answered over mutual TLS{expiry}")
    return EXIT_OK


def _nomenclatures(settings: Settings) -> Any:
    if settings.nomenclature is None:
        return None
    from rorclient.nomenclature import Nomenclatures

    return Nomenclatures.load(settings.nomenclature)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
