"""``rorclient demo``: the whole product on one machine, with no credentials.

It starts the sandbox (a local ROR simulator with mutual TLS and its own test certificates) with a
generated region, pulls the extraction into the configured store (the default SQLite file unless told
otherwise) as the source ``demo``, makes a round of changes in the sandbox (a rename, a new unit, a
closure, a unit moving to another establishment), applies them with one delta sync, refreshes one unit
by identifier, then moves the region to the sandbox's FHIR face (the national ROR FHIR API's dialect)
as the source ``demo-fhir`` — same rows, same identities — and syncs a FHIR delta, printing what changed
at each step.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from rorclient.config import Settings
from rorclient.models import EntityKind
from rorclient.store import Change, redact_url

__all__ = ["DEMO_FHIR_SOURCE", "DEMO_SOURCE", "run_demo"]

DEMO_SOURCE = "demo"
DEMO_FHIR_SOURCE = "demo-fhir"
#: One change of each kind a reader most wants to see, in an order the sandbox applies cleanly.
DEMO_MUTATIONS = ("rename", "new_unit", "closure", "contact_change", "move")


def run_demo(settings: Settings, *, establishments: int, seed: int, quiet: bool = False) -> int:
    from rorclient.sandbox import Sandbox
    from rorclient.sync import Sync, SyncOptions

    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    store_url = settings.store.url
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
            with Sync(demo_settings, source=DEMO_SOURCE, options=options) as sync:
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
                report = sync.sync()
                subscription.cancel()
                say(f"4. delta sync (Notif + Lecture): {report.summary()}")
                _show(changes, say)

                row = next(
                    sync.store.iter_entities(kind=EntityKind.UNIT, source=DEMO_SOURCE, include_deleted=False)
                )
                report = sync.refresh(unit=row.id)
                say(f"5. refresh of unit {row.id} ({row.name}): {report.summary()}")

                status = sync.status()
                say(
                    f"6. store: {status.entities} live entities, watermark {status.watermark}, "
                    f"{len(status.pending)} pending"
                )
            with Sync(demo_settings, source=DEMO_FHIR_SOURCE, options=options) as fhir:
                report = fhir.pull()
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
    say("   next: `rorclient export --format jsonl`, `rorclient status`, `rorclient changes --since 0`")
    return 0


def _show(changes: list[Change], say: Callable[[str], None]) -> None:
    for change in changes[:20]:
        say(f"   #{change.seq:<6} {change.change.value:<9} {change.kind.value:<13} {change.id}")
    if len(changes) > 20:
        say(f"   … and {len(changes) - 20} more")
