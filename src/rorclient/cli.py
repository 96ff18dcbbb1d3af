"""The ``rorclient`` command line. Exit codes are documented in docs/cli.md."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from rorclient import __version__
from rorclient._interrupt import InterruptGuard
from rorclient.config import Settings
from rorclient.errors import ConfigError, RorError
from rorclient.models import EntityKind
from rorclient.store import redact_url
from rorclient.store.base import Store
from rorclient.store.registry import open_store

__all__ = ["EXIT_BLOCKED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_RUN_FAILED", "EXIT_UNEXPECTED", "main"]

EXIT_OK = 0
#: A pull, sync or refresh that ran but failed (its report says why).
EXIT_RUN_FAILED = 1
#: The safety breaker stopped a run before it committed (same code as SafetyBreakerError).
EXIT_BLOCKED = 8
EXIT_UNEXPECTED = 70
EXIT_INTERRUPTED = 130

logger = logging.getLogger("rorclient")

Handler = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return ConfigError.exit_code
    try:
        settings = Settings.load(args.config, store_url=args.store, nomenclature=args.nomenclature)
        return handler(args, settings)
    except RorError as exc:
        print(f"rorclient: error: {exc}", file=sys.stderr)
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
        "--nomenclature", metavar="PATH", help="ANS NOS export (.zip, directory or .tabs) used to label codes"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display, errors only")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    load = commands.add_parser(
        "load",
        help="load open-data or extraction CSD files (xml, gzip, zip)",
        description="Load CSD files as the complete snapshot of one source: "
        "entities of that source missing from the files become tombstones. Like a pull, the load "
        "stops before committing (exit code 8) when it would delete or close too much (--force).",
    )
    load.add_argument("files", nargs="+", metavar="FILE")
    load.add_argument(
        "--source", default=None, help="source name stored with every entity (default: 'files')"
    )
    _readers_option(load, "a file")
    load.add_argument("--force", action="store_true", help="commit even if the safety breaker trips")
    load.add_argument("--dry-run", action="store_true", help="read and compare, commit nothing")
    load.add_argument("--json", action="store_true", help="print the load report as JSON")
    load.set_defaults(handler=_cmd_load)

    export = commands.add_parser("export", help="export the store, one JSON object per line")
    export.add_argument("--format", choices=["jsonl"], default="jsonl")
    export.add_argument("--kind", choices=[kind.value for kind in EntityKind])
    export.add_argument("--source")
    export.add_argument("--live", action="store_true", help="leave out tombstones (deleted entities)")
    export.add_argument("--full", action="store_true", help="add the whole entity under 'data'")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    export.set_defaults(handler=_cmd_export)

    status = commands.add_parser("status", help="what the store holds and where each source stands")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_cmd_status)

    changes = commands.add_parser("changes", help="the change log after a sequence number, as JSON lines")
    changes.add_argument("--since", type=int, default=0, metavar="SEQ")
    changes.add_argument("--limit", type=int, default=None)
    changes.set_defaults(handler=_cmd_changes)

    generate = commands.add_parser("generate", help="write a synthetic, schema-valid CSD extraction")
    generate.add_argument("output", metavar="FILE")
    generate.add_argument("--establishments", type=int, default=20)
    generate.add_argument("--seed", type=int, default=1)
    generate.add_argument("--compress", choices=["gzip", "zip"], default=None)
    generate.set_defaults(handler=_cmd_generate)

    cert = commands.add_parser("cert", help="certificate tools")
    cert_commands = cert.add_subparsers(title="cert commands", metavar="COMMAND")
    inspect = cert_commands.add_parser(
        "inspect",
        help="describe a certificate (PKCS#12, PEM or DER) and say whether it can authenticate a client",
        description="Exit code 0 when the certificate can authenticate a TLS client now; 54 expired, "
        "55 not yet valid, 56 unsuitable usage (e.g. seal-only); 50-53 when the file cannot be read.",
    )
    inspect.add_argument("file", metavar="FILE")
    inspect.add_argument("--password-env", metavar="NAME", help="environment variable holding the password")
    inspect.add_argument("--password-file", metavar="FILE", help="file holding the password")
    inspect.add_argument("--json", action="store_true")
    inspect.set_defaults(handler=_cmd_cert_inspect)

    _add_sync_commands(commands)
    _add_ror_commands(commands)

    sandbox = commands.add_parser(
        "sandbox",
        help="run a local ROR simulator (mTLS, SOAP, extraction) with generated data",
        description="Serves Notif, Lecture and the extraction over mutual TLS on 127.0.0.1 until "
        "interrupted. --write-config writes a client configuration (certificate, password file, "
        "URLs) that the other commands can use with --config.",
    )
    sandbox.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    sandbox.add_argument("--seed", type=int, default=0)
    sandbox.add_argument("--establishments", type=int, default=200)
    sandbox.add_argument("--tls-dir", metavar="DIR", help="where the test PKI is kept (reused if valid)")
    sandbox.add_argument("--write-config", metavar="FILE", help="write a ready client config (TOML) here")
    sandbox.add_argument(
        "--config-source",
        choices=("csd", "fhir", "both"),
        default="csd",
        help="which sources --write-config writes: the CSD services, the FHIR API, or both (default: csd)",
    )
    sandbox.add_argument("--test-mode", action="store_true", help="enable the /_sandbox/ control API")
    sandbox.set_defaults(handler=_cmd_sandbox)

    demo = commands.add_parser(
        "demo",
        help="start a sandbox, pull it, apply ROR changes through a sync, refresh a unit, show what changed",
    )
    demo.add_argument("--establishments", type=int, default=25)
    demo.add_argument("--seed", type=int, default=2026)
    demo.set_defaults(handler=_cmd_demo)
    return parser


_SOURCE_HELP = "name of a [[sources]] entry (default: the only csd source, else the only source)"


def _add_sync_commands(commands: Any) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--source", help=_SOURCE_HELP)
        parser.add_argument("--dry-run", action="store_true", help="compute and report, commit nothing")
        parser.add_argument("--json", action="store_true", help="print the run report as JSON")

    pull = commands.add_parser("pull", help="full pull: download the extraction and swap it in atomically")
    common(pull)
    pull.add_argument("--force", action="store_true", help="commit even if the safety breaker trips")
    _readers_option(pull, "a downloaded extraction")
    pull.set_defaults(handler=_cmd_pull)

    sync = commands.add_parser("sync", help="one delta cycle: Notif since the watermark, Lecture of each")
    common(sync)
    sync.add_argument("--force", action="store_true", help="commit even if the safety breaker trips")
    sync.set_defaults(handler=_cmd_sync)

    refresh = commands.add_parser("refresh", help="re-read one establishment or unit and replace its subtree")
    common(refresh)
    target = refresh.add_mutually_exclusive_group(required=True)
    target.add_argument("--establishment", metavar="ID", help="idNat_Struct of an establishment")
    target.add_argument("--unit", metavar="ID", help="identifiantOI of an internal organisation")
    refresh.set_defaults(handler=_cmd_refresh)

    daemon = commands.add_parser("daemon", help="sync on a schedule, with a weekly full pull, until stopped")
    daemon.add_argument("--source", help=_SOURCE_HELP)
    daemon.add_argument("--interval", default="15m", help="time between runs (e.g. 30s, 15m, 1h)")
    daemon.add_argument("--full-every", default="7d", help="full pull period (e.g. 7d; 0 or never: none)")
    daemon.add_argument("--health-file", metavar="PATH", help="JSON health file, rewritten after each run")
    daemon.add_argument("--log-json", action="store_true", help="structured logs, one JSON object per line")
    daemon.set_defaults(handler=_cmd_daemon)


def _add_ror_commands(commands: Any) -> None:
    ror = commands.add_parser("ror", help="call the ROR web services of a configured source directly")
    ror_commands = ror.add_subparsers(title="ror commands", metavar="COMMAND")

    def with_source(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--source", help="name of a [[sources]] entry (default: the only csd source)")

    notif = ror_commands.add_parser("notif", help="TR-Notif: establishments changed since a date-time")
    with_source(notif)
    notif.add_argument("--since", required=True, help="ISO 8601 date-time (naive = Paris local time)")
    notif.add_argument("--activity", action="append", default=[], metavar="CODE", help="TRE_R227 filter")
    notif.add_argument("--patients", action="append", default=[], metavar="CODE", help="TRE_R239 filter")
    notif.add_argument("--json", action="store_true")
    notif.set_defaults(handler=_cmd_ror_notif)

    read = ror_commands.add_parser("read", help="TR_Lecture: the offer of one establishment or unit, as JSON")
    with_source(read)
    target = read.add_mutually_exclusive_group(required=True)
    target.add_argument("--establishment", metavar="ID", help="idNat_Struct of an establishment")
    target.add_argument("--unit", metavar="ID", help="identifiantOI of an internal organisation")
    read.add_argument("--since", help="dateRef (establishment reads only)")
    read.add_argument("--activity", action="append", default=[], metavar="CODE")
    read.add_argument("--patients", action="append", default=[], metavar="CODE")
    read.add_argument("--restricted", action="store_true", help="restrictedOrganisation=1")
    read.set_defaults(handler=_cmd_ror_read)

    download = ror_commands.add_parser("download", help="download the extraction (resumes a cut download)")
    with_source(download)
    download.add_argument("dest", metavar="FILE")
    download.set_defaults(handler=_cmd_ror_download)

    check = ror_commands.add_parser("check", help="check the certificate and reach the ROR (one Notif)")
    with_source(check)
    check.set_defaults(handler=_cmd_ror_check)


def _configure_logging(args: argparse.Namespace) -> None:
    level = (
        logging.ERROR if args.quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    )
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def _store(settings: Settings) -> Store:
    return open_store(settings.store.url)


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
        print(
            f"{verb} {report.entities} entities from {len(report.files)} file(s) into source "
            f"{report.source!r} in {report.seconds:.1f} s ({rate:.1f} MB/s{readers}): {changed}"
        )
    return EXIT_OK


def _cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from rorclient.export import export_store

    nomenclatures = _nomenclatures(settings)
    kind = EntityKind(args.kind) if args.kind else None
    with ExitStack() as stack:
        store = stack.enter_context(_store(settings))
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
    with _store(settings) as store:
        stats = store.stats()
        states = store.sync_states()
        pending = store.pending()
        runs = store.runs(limit=5)
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
    for name, info in status["sources"].items():
        print(
            f"source {name!r}: {info['entities']} entities, watermark {info['watermark']}, "
            f"last full pull {info['last_full_pull']}"
        )
    for sync_status in status["sync"]:
        certificate = sync_status.get("certificate")
        if certificate is not None:
            print(_certificate_line(sync_status["source"], certificate))
    if pending:
        print(f"pending establishments: {len(pending)}")
    for run in runs:
        print(
            f"run {run.run_id[:8]} {run.operation:<6} {run.status:<8} {run.started:%Y-%m-%d %H:%M:%S} "
            f"{run.entities} entities" + (f" — {run.error}" if run.error else "")
        )
    return EXIT_OK


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
                with Sync(settings, source=source.name, store=store) as sync:
                    statuses.append(sync.status())
            except RorError as exc:
                logger.warning("cannot report the status of source %r: %s", source.name, exc)
    return statuses


def _cmd_changes(args: argparse.Namespace, settings: Settings) -> int:
    if args.since < 0:
        raise ConfigError("--since must be a sequence number ≥ 0")
    with _store(settings) as store:
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

    return run_demo(settings, establishments=args.establishments, seed=args.seed, quiet=args.quiet)


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
    options = settings.sync_options(readers=getattr(args, "readers", None))
    with Sync(settings, source=source, options=options) as sync, ProgressLine(enabled=not args.quiet) as line:

        def progress(event: Any) -> None:
            line.show(event.describe())

        if operation == "pull":
            report = sync.pull(force=args.force, dry_run=args.dry_run, progress=progress)
        elif operation == "sync":
            report = sync.sync(force=args.force, dry_run=args.dry_run, progress=progress)
        else:
            report = sync.refresh(establishment=args.establishment, unit=args.unit, dry_run=args.dry_run)
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
    return EXIT_OK


def _cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    return _run_sync(args, settings, "pull")


def _cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    return _run_sync(args, settings, "sync")


def _cmd_refresh(args: argparse.Namespace, settings: Settings) -> int:
    return _run_sync(args, settings, "refresh")


def _cmd_daemon(args: argparse.Namespace, settings: Settings) -> int:
    from rorclient.daemon import DaemonOptions, configure_logging, parse_duration, run_daemon

    if args.log_json:
        configure_logging(json_lines=True)
    full_every = None if args.full_every in ("0", "never") else parse_duration(args.full_every)
    options = DaemonOptions(
        interval=parse_duration(args.interval),
        full_every=full_every,
        health_file=Path(args.health_file) if args.health_file else None,
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


def _cmd_ror_notif(args: argparse.Namespace, settings: Settings) -> int:
    from rorclient.ror import RorClient

    with RorClient(_csd_source(args, settings)) as client:
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
    from rorclient.ror import RorClient

    with RorClient(_csd_source(args, settings)) as client:
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
    from rorclient.ror import RorClient

    with RorClient(_csd_source(args, settings)) as client, ProgressLine(enabled=not args.quiet) as line:

        def progress(done: int, total: int | None) -> None:
            line.show(f"{done / 1e6:,.1f}" + (f"/{total / 1e6:,.1f}" if total else "") + " MB")

        result = client.download_extraction(args.dest, progress=progress)
    print(result.model_dump_json(indent=2))
    return EXIT_OK


def _cmd_ror_check(args: argparse.Namespace, settings: Settings) -> int:
    import datetime as dt

    from rorclient.ror import RorClient

    source = _csd_source(args, settings)
    with RorClient(source) as client:
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
