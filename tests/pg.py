"""A real PostgreSQL server for the tests (no mock database anywhere).

Test modules that need one say ``pytest_plugins = ("tests.pg",)`` and take a fixture:

``postgres_server_url``
    (session) the URL of a database on a running server, without ``?schema=``. It is
    ``RORCLIENT_TEST_POSTGRES_URL`` when that is set (CI starts its own server with ``.ci/postgres.sh``);
    otherwise a throwaway cluster is created with the Debian binaries (``/usr/lib/postgresql/*/bin``):
    ``initdb`` into a temporary directory (as the ``postgres`` user when running as root, since
    PostgreSQL refuses to run as root), started on 127.0.0.1 on a free port with its Unix socket in that
    directory, password authentication (SCRAM) for TCP, stopped and removed at the end of the session.
    With neither, every PostgreSQL test *fails* with instructions: a missing database is never a skip.

``postgres_url``
    (function) the same URL with ``?schema=<fresh schema>``: each test gets its own empty schema,
    dropped afterwards. Schemas are much cheaper than databases, so isolation costs milliseconds.

The server must ask for a password over TCP (the tests check that a wrong one is refused and never
shown): ``.ci/postgres.sh`` and :class:`TemporaryPostgres` both set it up that way.

:class:`TemporaryPostgres` is also used by ``benchmarks/store_pull.py``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import pytest

ENV_URL = "RORCLIENT_TEST_POSTGRES_URL"
DATABASE = "rorclient_test"
SUPERUSER = "postgres"
_HOW_TO_GET_ONE = (
    "the PostgreSQL tests need a server: install the Debian package (apt-get install -y postgresql) so that "
    f"/usr/lib/postgresql/*/bin/initdb exists, or start one and set {ENV_URL} "
    "(see .ci/postgres.sh, which does both)"
)


def find_bindir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: the newest ``/usr/lib/postgresql/<version>/bin``, else
    the one holding ``initdb`` on ``PATH``."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TemporaryPostgres:
    """A PostgreSQL cluster of its own in a temporary directory, on 127.0.0.1.

    ``durable=False`` (the tests) turns fsync off; the benchmarks keep PostgreSQL's defaults.
    """

    def __init__(self, bindir: Path, *, durable: bool = False, database: str = DATABASE) -> None:
        self.bindir = bindir
        self.durable = durable
        self.database = database
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.directory: Path | None = None
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return (
            f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{self.database}"
        )

    def start(self) -> str:
        """Create, start and prepare the cluster; returns the URL of its database."""
        self.directory = Path(tempfile.mkdtemp(prefix="rorclient-pg-"))
        data = self.directory / "data"
        password_file = self.directory / "password"
        password_file.write_text(self.password + "\n")
        if self._as_postgres:
            shutil.chown(self.directory, user=SUPERUSER)
            shutil.chown(password_file, user=SUPERUSER)
        self._run(
            "initdb",
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={password_file}",
            "--encoding=UTF8",
            "--locale=C",
        )
        password_file.unlink()
        self.port = free_port()
        settings = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.directory}",
            "-c max_connections=200",
        ]
        if not self.durable:
            settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        log = self.directory / "server.log"
        try:
            self._run("pg_ctl", "-D", str(data), "-l", str(log), "-o", " ".join(settings), "-w", "start")
        except RuntimeError as error:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{error}\nserver log:\n{tail}") from None
        self._create_database()
        return self.url

    def stop(self) -> None:
        if self.directory is None:
            return
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _create_database(self) -> None:
        import psycopg

        admin = self.url.rpartition("/")[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.database}"')

    def _run(self, program: str, *args: str) -> None:
        command: Sequence[str] = [str(self.bindir / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.directory)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip() or done.stdout}")


@contextlib.contextmanager
def server_url() -> Iterator[str]:
    """``RORCLIENT_TEST_POSTGRES_URL`` if set, else the URL of a :class:`TemporaryPostgres`."""
    configured = os.environ.get(ENV_URL)
    if configured:
        yield configured
        return
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(_HOW_TO_GET_ONE)
    with TemporaryPostgres(bindir) as url:
        yield url


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    try:
        context = server_url()
        url = context.__enter__()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield url
    finally:
        context.__exit__(None, None, None)


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A URL naming a fresh, empty schema (dropped after the test)."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield with_schema(postgres_server_url, schema)
    drop_schema(postgres_server_url, schema)


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SET lock_timeout = '10s'")
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
