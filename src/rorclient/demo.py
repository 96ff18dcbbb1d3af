"""``rorclient demo``: the whole product on one machine, with no credentials.

It starts the sandbox (a local ROR simulator with mutual TLS and its own test certificates) with a
generated region, pulls the extraction into a store of its own (``demo.sqlite3`` in the user data
directory unless told otherwise: never the user's default store; the demo's own store starts over at every
run) as the source ``demo``, makes a round of changes in the sandbox (a rename, a new unit, a closure, a
unit moving to another establishment), applies them with one delta sync, refreshes one unit by
identifier, then moves the region to the sandbox's FHIR face (the national ROR FHIR API's dialect) as the
source ``demo-fhir`` — same rows, same identities — and syncs a FHIR delta, printing what changed at each
step, and ends with the commands that query the demo's store.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import platformdirs

from rorclient.config import Settings
from rorclient.models import EntityKind
from rorclient.store import Change, redact_url

__all__ = ["DEMO_FHIR_SOURCE", "DEMO_SOURCE", "demo_store_url", "run_demo"]

DEMO_SOURCE = "demo"
DEMO_FHIR_SOURCE = "demo-fhir"
#: One change of each kind a reader most wants to see, in an order the sandbox applies cleanly.
DEMO_MUTATIONS = ("rename", "new_unit", "closure", "contact_change", "move")


def demo_store_url() -> str:
    """The demo's own store: ``sqlite:///<user data dir>/rorclient/demo.sqlite3``, beside (never in) the
    default store."""
    return f"sqlite:///{Path(platformdirs.user_data_dir('rorclient')) / 'demo.sqlite3'}"


def run_demo(
    settings: Settings,
    *,
    establishments: int,
    seed: int,
    quiet: bool = False,
    store_url: str | None = None,
) -> int:
    """Run the demo into ``store_url`` (default: :func:`demo_store_url`; ``settings.store`` is not used,
    so a user's own store is never touched unless named here)."""
    from rorclient.sandbox import Sandbox
    from rorclient.sync import Sync, SyncOptions

    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    if store_url is None:
        store_url = demo_store_url()
        _start_over(store_url)
    with tempfile.TemporaryDirectory(prefix="rorclient-demo-") as tmp:
        work = Path(tmp)
        with Sandbox(establishments=establishments, seed=seed, tls_dir=work / "tls") as sandbox:
            config = sandbox.write_client_config(
                work / "client.toml",
                source_name=DEMO_SOURCE,
                kinds=("csd", "fhir"),
                fhir_source_name=DEMO_FHIR_SOURCE,
            )
            demo_settings = Settings.load(config, environ={}, store_url=store_url)
            say(f"1. sandbox ROR on {sandbox.base_url} (mutual TLS, {establishments} establishments)")
            options = SyncOptions(data_dir=work / "downloads")
            with Sync.from_settings(demo_settings, source=DEMO_SOURCE, options=options) as sync:
                report = sync.pull(force=True)
                say(f"2. pull into {redact_url(store_url)}: {report.summary()}")

                sandbox.clock.advance(minutes=1)
                for number, kind in enumerate(DEMO_MUTATIONS):
                    for mutation in sandbox.mutate(count=1, kinds=[kind], seed=seed + number):
                        target = (
                            f" → {mutation.target_establishment}" if mutation.target_establishment else ""
                        )
                        unit = f" unit {mutation.unit}" if mutation.unit else ""
                        say(f"3. the ROR changes: {kind} in {mutation.establishment}{unit}{target}")
                sandbox.clock.advance(minutes=1)

                changes: list[Change] = []
                subscription = sync.on_change(changes.append)
                # Forced like the pull: in a store the demo ran in before, rows its FHIR step left are
                # taken back without stopping the demo (a real sync refuses that takeover).
                report = sync.sync(force=True)
                subscription.cancel()
                say(f"4. delta sync (Notif + Lecture): {report.summary()}")
                _show(changes, say)

                row = next(
                    sync.store.iter_entities(kind=EntityKind.UNIT, source=DEMO_SOURCE, include_deleted=False)
                )
                report = sync.refresh(unit=row.id)
                say(f"5. refresh of unit {row.id} ({row.name}): {report.summary()}")

                status = sync.status()
                zone = demo_settings.sync_options().server_timezone
                watermark = f"{status.watermark:%Y-%m-%d %H:%M:%S} {zone}" if status.watermark else "none"
                say(
                    f"6. store: {status.entities} live entities, watermark {watermark}, "
                    f"{len(status.pending)} pending"
                )
            with Sync.from_settings(demo_settings, source=DEMO_FHIR_SOURCE, options=options) as fhir:
                # The region moves from the CSD source to the FHIR one on purpose: forced, as an
                # operator moving a source does (the takeover check stops it otherwise).
                report = fhir.pull(force=True)
                say(f"7. the same region over FHIR ($export, OAuth2): {report.summary()}")
                sandbox.clock.advance(minutes=1)
                for mutation in sandbox.mutate(count=2, kinds=["rename", "new_unit"], seed=seed + 99):
                    say(f"8. the ROR changes: {mutation.kind} in {mutation.establishment}")
                sandbox.clock.advance(minutes=1)
                changes = []
                subscription = fhir.on_change(changes.append)
                report = fhir.sync()
                subscription.cancel()
                say(f"9. FHIR delta sync (_lastUpdated + graph reads): {report.summary()}")
                _show(changes, say)
    store_option = f"{_program()} --store {shlex.quote(redact_url(store_url))}"
    say(f"10. the demo's store is {redact_url(store_url)} (your default store was not touched); query it:")
    say(f"   {store_option} status")
    say(f"   {store_option} export --format jsonl")
    say(f"   {store_option} changes --since 0")
    return 0


def _start_over(store_url: str) -> None:
    """Remove the demo's own store (and its WAL files), so every run tells the same story from nothing.

    Only ever called for :func:`demo_store_url`: a store the user names is never removed."""
    path = Path(store_url.removeprefix("sqlite:///"))
    for leftover in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", ".lock"))):
        leftover.unlink(missing_ok=True)


def _program() -> str:
    """``rorclient`` as the user can type it: the bare name when it is on PATH (an activated or global
    install), else the script beside this interpreter (``./dev demo`` runs ``.venv/bin/rorclient``)."""
    if shutil.which("rorclient"):
        return "rorclient"
    script = Path(sys.executable).parent / "rorclient"
    return shlex.quote(str(script)) if script.exists() else "rorclient"


def _show(changes: list[Change], say: Callable[[str], None]) -> None:
    for change in changes[:20]:
        say(f"   #{change.seq:<6} {change.change.value:<9} {change.kind.value:<13} {change.id}")
    if len(changes) > 20:
        say(f"   … and {len(changes) - 20} more")
