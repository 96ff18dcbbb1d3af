"""Keep a local copy of the ROR current from inside an application (docs/sync.md).

    python examples/embedded_sync.py                    # against a local sandbox, nothing to configure
    python examples/embedded_sync.py --config ror.toml --source idf --store sqlite:///ror.db

Without ``--config``, a sandbox (a local ROR simulator with its own test certificates) is started, some
changes are made to it between the pull and the sync, and one unit is refreshed, to show the change feed.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from rorclient.config import Settings
from rorclient.models import EntityKind
from rorclient.store import Change
from rorclient.sync import Sync, SyncOptions


def show(change: Change) -> None:
    """The change feed: called after each establishment is committed."""
    print(f"  #{change.seq:<5} {change.change.value:<9} {change.kind.value:<13} {change.id}")


def run(sync: Sync, make_changes: Callable[[], None] | None = None) -> None:
    if not sync.status().initialized:
        report = sync.pull()  # the whole extraction, swapped in atomically
        print(report.summary())
    if make_changes is not None:
        make_changes()
    subscription = sync.on_change(show)
    report = sync.sync()  # one Notif + Lecture cycle; run it from your own scheduler
    print(report.summary())
    subscription.cancel()

    # Another thread may read the store at any time: it sees each establishment before or after.
    unit = next(sync.store.iter_entities(kind=EntityKind.UNIT, source=sync.source, include_deleted=False))
    refreshed = sync.refresh(unit=unit.id)  # one unit, now
    print(refreshed.summary())

    status = sync.status()
    print(f"watermark {status.watermark}, {status.entities} entities, {len(status.pending)} pending")
    if status.certificate is not None:
        print(f"certificate {status.certificate.subject}: {status.certificate.days_until_expiry} days left")


@contextlib.contextmanager
def sandbox_settings(work: Path) -> Iterator[tuple[Settings, Callable[[], None]]]:
    """A sandbox ROR and the settings to reach it, plus a function that changes its data."""
    from rorclient.sandbox import Sandbox

    with Sandbox(establishments=12, seed=4) as sandbox:
        config = sandbox.write_client_config(work / "client.toml", source_name="sandbox")
        settings = Settings.load(config, environ={}, store_url=f"sqlite:///{work / 'ror.sqlite3'}")

        def make_changes() -> None:
            sandbox.clock.advance(minutes=1)
            for number, kind in enumerate(["rename", "new_unit", "closure", "move"]):
                (mutation,) = sandbox.mutate(count=1, kinds=[kind], seed=number)
                target = f" -> {mutation.target_establishment}" if mutation.target_establishment else ""
                print(f"sandbox: {kind} in {mutation.establishment}{target} ({mutation.unit})")

        yield settings, make_changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="TOML settings (default: start a sandbox)")
    parser.add_argument("--source", help="the [[sources]] name to sync")
    parser.add_argument("--store", help="store URL (default: the settings')")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rorclient-example-") as tmp:
        work = Path(tmp)
        options = SyncOptions(data_dir=work / "downloads")
        if args.config is None:
            with (
                sandbox_settings(work) as (settings, make_changes),
                Sync.from_settings(settings, options=options) as sync,
            ):
                run(sync, make_changes)
        else:
            settings = Settings.load(args.config, store_url=args.store)
            with Sync.from_settings(settings, source=args.source, options=options) as sync:
                run(sync)


if __name__ == "__main__":
    main()
