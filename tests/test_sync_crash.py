"""Crash safety: ``kill -9`` a pull or sync process at random points (download, load, read, plan, apply,
commit), run again, and the store always ends equal to the sandbox's truth; meanwhile a reader in
another process never sees an establishment half applied.

``RORCLIENT_SYNC_CRASHES`` sets the number of kills (default 10; the acceptance figure is 30).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rorclient.config import Settings
from rorclient.sandbox import Sandbox
from rorclient.sandbox.mutations import MUTATION_KINDS
from rorclient.store.base import StoredEntity
from rorclient.store.sqlite import SqliteStore
from rorclient.sync import RunStatus, Sync, SyncOptions
from tests._sync_fakes import mutate_sandbox

CRASHES = int(os.environ.get("RORCLIENT_SYNC_CRASHES", "10"))
SOURCE = "sandbox"

# The process that gets killed: imports first, says "ready", then runs the operation read from stdin and
# reports each progress phase, so that the test knows where the kill landed.
CHILD = r"""
import sys
import rorclient.ror
from rorclient.config import Settings
from rorclient.store.sqlite import SqliteStore
from rorclient.sync import Sync, SyncOptions

config, database, data = sys.argv[1:4]
settings = Settings.load(config, environ={})
print("ready", flush=True)
operation = sys.stdin.readline().strip()

def progress(event):
    print("phase", event.phase, flush=True)

with SqliteStore(database) as store, Sync.from_settings(
    settings, store=store, options=SyncOptions(data_dir=data, concurrency=2)
) as sync:
    report = sync.pull(progress=progress) if operation == "pull" else sync.sync(progress=progress)
print("done", report.status.value, flush=True)
"""

Projection = dict[str, frozenset[tuple[Any, ...]]]


class Child:
    """A warmed-up sync process waiting for its operation."""

    def __init__(self, config: Path, database: Path, data: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-c", CHILD, str(config), str(database), str(data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.phase = "startup"
        self.done = threading.Event()
        self.ready = threading.Event()
        self.outcome: str | None = None
        self._reader = threading.Thread(target=self._follow, daemon=True)
        self._reader.start()

    def _follow(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == "ready":
                self.ready.set()
            elif word == "phase":
                self.phase = rest
            elif word == "done":
                self.outcome = rest
        self.ready.set()
        self.done.set()

    def start(self, operation: str) -> None:
        assert self.ready.wait(30), "the sync process did not start"
        assert self.process.stdin is not None
        self.process.stdin.write(operation + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.done.wait(10)

    def finish(self) -> None:
        self.process.wait(60)
        self.done.wait(10)
        assert self.process.stderr is not None
        errors = self.process.stderr.read()
        assert self.process.returncode == 0, errors

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class Watcher:
    """Reads the store in a loop (another connection, like any application would) and keeps every view
    of every establishment, to be checked against the states before and after the run."""

    def __init__(self, database: Path) -> None:
        self.store = SqliteStore(database)
        self.views: list[Projection] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.views.append(project(self.store.iter_entities(source=SOURCE, include_deleted=False)))
            time.sleep(0.005)

    def take(self) -> list[Projection]:
        views, self.views = self.views, []
        return views

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.store.close()


def project(rows: Iterator[StoredEntity]) -> Projection:
    """Each establishment's live subtree, as (kind, id, parent, name, closed, content hash) rows."""
    result: dict[str, set[tuple[Any, ...]]] = {}
    for row in rows:
        if row.establishment is not None:
            result.setdefault(row.establishment, set()).add(
                (row.kind.value, row.id, row.parent, row.name, row.closed, row.content_hash)
            )
    return {key: frozenset(value) for key, value in result.items()}


def moved_ids(before: Projection, after: Projection) -> set[str]:
    """Units that changed establishment between the two states, and what hangs under them: while a move
    is being applied, the unit may legitimately wait under its old establishment."""
    home_before = {row[1]: key for key, rows in before.items() for row in rows if row[0] == "unit"}
    home_after = {row[1]: key for key, rows in after.items() for row in rows if row[0] == "unit"}
    return {unit for unit, key in home_after.items() if home_before.get(unit, key) != key}


def without(rows: frozenset[tuple[Any, ...]], moved: set[str]) -> frozenset[tuple[Any, ...]]:
    return frozenset(row for row in rows if row[1] not in moved and row[2] not in moved)


def check_views(views: list[Projection], before: Projection, after: Projection) -> int:
    """Every view shows each establishment exactly as before or exactly as after; returns the count."""
    moved = moved_ids(before, after)
    for view in views:
        for key in set(view) | set(before) | set(after):
            seen = without(view.get(key, frozenset()), moved)
            allowed = {
                without(before.get(key, frozenset()), moved),
                without(after.get(key, frozenset()), moved),
            }
            assert seen in allowed, f"establishment {key} seen half applied"
    return len(views)


PHASES = {"pull": ("download", "load", "commit"), "sync": ("notif", "read", "plan", "apply", "commit")}


def kill_at_random(child: Child, rng: random.Random, operation: str, duration: float) -> bool:
    """Kill the child at a random time, or just after it reports a randomly chosen phase; returns
    whether it was killed (``False``: it finished first)."""
    target = rng.choice([*PHASES[operation], "any"])
    if target == "any":
        child.done.wait(rng.uniform(0.0, duration))
    else:
        deadline = time.monotonic() + 3 * duration
        while child.phase != target and not child.done.is_set() and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.005))
    if child.done.is_set():
        return False
    child.kill()
    return True


def truth(sandbox: Sandbox) -> set[tuple[Any, ...]]:
    return {(row["kind"], row["id"], row["parent"], row["name"], row["closed"]) for row in sandbox.snapshot()}


def export(store: SqliteStore) -> set[tuple[Any, ...]]:
    return {
        (row.kind.value, row.id, row.parent, row.name, row.closed)
        for row in store.iter_entities(source=SOURCE, include_deleted=False)
    }


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(establishments=20, seed=5) as sb:
        # Slow the network down so that kills land inside the download and the reads too.
        sb.faults.add("lecture", "latency", delay=0.02)
        sb.faults.add("extraction", "trickle", delay=0.01)
        yield sb


def test_killing_a_pull_or_sync_at_random_points_never_loses_nor_half_applies_anything(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = sandbox.write_client_config(tmp_path / "client.toml", source_name=SOURCE)
    database, data = tmp_path / "ror.db", tmp_path / "data"
    settings = Settings.load(config, environ={})
    options = SyncOptions(data_dir=data)
    rng = random.Random(20)
    phases: Counter[str] = Counter()
    views_checked = 0
    durations: dict[str, float] = {}
    with SqliteStore(database) as store, Sync.from_settings(settings, store=store, options=options) as sync:
        sync.pull()
        watcher = Watcher(database)
        child = Child(config, database, data)
        try:
            for number in range(4 * CRASHES + 4):
                if sum(phases.values()) >= CRASHES:
                    break
                operation = "pull" if number % 4 == 0 else "sync"
                sandbox.clock.advance(seconds=30)
                mutate_sandbox(sandbox, 1, kinds=[MUTATION_KINDS[number % len(MUTATION_KINDS)]], seed=number)
                mutate_sandbox(sandbox, 3, seed=100 + number)
                before = project(store.iter_entities(source=SOURCE, include_deleted=False))
                watcher.take()
                started = time.monotonic()
                child.start(operation)
                if operation not in durations:  # the first pull and sync run to the end: how long they take
                    child.finish()
                    durations[operation] = time.monotonic() - started
                    assert child.outcome == RunStatus.SUCCESS.value
                elif kill_at_random(child, rng, operation, durations[operation]):
                    phases[child.phase] += 1
                child.close()
                child = Child(config, database, data)  # warms up while this round is checked
                report = sync.pull() if operation == "pull" else sync.sync()  # the re-run
                assert report.status is RunStatus.SUCCESS, report.summary()
                assert export(store) == truth(sandbox), f"round {number}: {operation} killed in {child.phase}"
                after = project(store.iter_entities(source=SOURCE, include_deleted=False))
                views_checked += check_views(watcher.take(), before, after)
        finally:
            child.close()
            watcher.close()
    print(f"\nkills by phase: {dict(phases)}; reader views checked: {views_checked}")
    assert sum(phases.values()) == CRASHES
    assert views_checked > CRASHES
