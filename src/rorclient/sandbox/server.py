"""The ROR sandbox: a local ROR v2.4 simulator (SOAP Notif + Lecture, REST extraction) over mTLS.

Start it in-process for tests (a thread, a free port, clean stop)::

    from rorclient.sandbox import Sandbox

    with Sandbox(establishments=20, seed=1) as sb:
        sb.soap_url, sb.extraction_url            # https://127.0.0.1:<port>/...
        sb.pki.client.pkcs12, sb.pki.ca_bundle    # credentials a client needs
        sb.mutate(count=5)                        # renames, moves, closures... stamped sb.clock.now()
        sb.faults.add("lecture", "503", count=2)  # the next two Lectures fail
        sb.snapshot()                             # the ground truth, export-shaped

or from the command line (``rorclient sandbox``, which calls :func:`serve_forever`). A pytest fixture is
one line in a ``conftest.py``: ``sandbox = rorclient.sandbox.pytest_fixture(establishments=10)``.

What it serves and how strictly is told by the docstrings of the private modules next to this one
(``_soap``: request checks; ``_selection``: access profiles and filters; ``_app``: extraction and control
API; ``_faults``: fault kinds); every knob is a field of :class:`SandboxOptions`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import signal
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal, Unpack

import platformdirs
from pydantic import ValidationError

from rorclient.errors import ConfigError
from rorclient.models import Offer
from rorclient.sandbox._app import SandboxApp
from rorclient.sandbox._clock import SandboxClock
from rorclient.sandbox._faults import FaultInjector
from rorclient.sandbox._handlers import SandboxHTTPServer
from rorclient.sandbox._options import SandboxOptions
from rorclient.sandbox._platines import PLATINES_ESTABLISHMENT_ID, platines_offer
from rorclient.sandbox._settings import SandboxSettings
from rorclient.sandbox._truth import Base, GeneratedBase, GroundTruth, MemoryBase, offers_by_establishment
from rorclient.sandbox.mutations import Mutation
from rorclient.sandbox.pki import TestPki, build_test_pki, server_ssl_context

__all__ = ["Sandbox", "default_tls_dir", "pytest_fixture", "serve_forever"]

_PASSWORD_FILE = "client-password.txt"  # noqa: S105 - a file name


class Sandbox:
    """A sandbox server running in a background thread; use it as a context manager.

    Keyword arguments are :class:`SandboxOptions` fields (``establishments``, ``seed``, ``port``,
    ``tls_dir``, ``test_mode``, ``platines_fixture``, ``default_profile``...; typed by
    :class:`SandboxSettings`), applied over ``options``. A bad value is a
    :class:`~rorclient.errors.ConfigError` naming the field.
    """

    def __init__(self, *, options: SandboxOptions | None = None, **settings: Unpack[SandboxSettings]) -> None:
        base = options.model_dump() if options is not None else {}
        try:
            self.options = SandboxOptions.model_validate({**base, **settings})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}"
                for error in exc.errors()
            )
            raise ConfigError(f"invalid sandbox settings: {problems}") from None
        self._work_dir: Path | None = None
        self._pki: TestPki | None = None
        self._app: SandboxApp | None = None
        self._server: SandboxHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Build the PKI and the data, bind the port and serve in a thread; returns ``self``."""
        if self._server is not None:
            raise ConfigError("the sandbox is already running")
        options = self.options
        self._work_dir = Path(tempfile.mkdtemp(prefix="rorclient-sandbox-"))
        try:
            pki = build_test_pki(options.tls_dir or self._work_dir / "pki", reuse=True)
            truth = GroundTruth(_base(options), extra=[platines_offer()] if options.platines_fixture else [])
            clock = SandboxClock(options.clock_start, ticking=options.clock_ticking)
            app = SandboxApp(options, truth, clock, self._work_dir)
            try:
                server = SandboxHTTPServer((options.host, options.port), app, _ssl_context(pki, options))
            except OSError as exc:
                raise ConfigError(
                    f"cannot start the sandbox on {options.host}:{options.port}: {exc}"
                ) from exc
        except BaseException:
            self._cleanup()
            raise
        self._pki, self._app, self._server = pki, app, server
        serving = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="rorclient-sandbox"
        )
        serving.start()
        self._threads = [serving]
        if options.build_index == "background":
            indexing = threading.Thread(target=_index_quietly, args=(truth,), name="rorclient-sandbox-index")
            indexing.start()
            self._threads.append(indexing)
        return self

    def stop(self) -> None:
        """Stop serving, close every connection, join every thread and delete temporary files."""
        server, app = self._server, self._app
        if server is None or app is None:
            return
        app.truth.close()
        app.fhir.close()
        server.stop()
        app.extraction_cache.close()
        for thread in self._threads:
            thread.join()
        self._threads = []
        self._server = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- where ----------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._running_server().server_address[1])

    @property
    def base_url(self) -> str:
        """``https://<host>:<port>``."""
        host = self.options.host
        return f"https://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def soap_url(self) -> str:
        return self.base_url + self.options.soap_path

    @property
    def extraction_url(self) -> str:
        return self.base_url + self.options.extraction_path

    @property
    def fhir_url(self) -> str:
        """The FHIR base (``https://<host>:<port>/ws-diffusion-fhir``)."""
        return self.base_url + self.options.fhir_path

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint of the FHIR face."""
        return self.base_url + self.options.fhir_token_path

    @property
    def pki(self) -> TestPki:
        """The test PKI: client certificate (``pki.client.pkcs12`` / ``.certificate`` / ``.key``),
        ``pki.ca_bundle``, ``pki.password`` and the bad certificates for negative tests."""
        if self._pki is None:
            raise ConfigError("the sandbox is not running")
        return self._pki

    # -- control --------------------------------------------------------------------------------------

    @property
    def clock(self) -> SandboxClock:
        """The server clock: ``now()``, ``advance(seconds=...)``, ``set(datetime)``."""
        return self._running_app().clock

    @property
    def faults(self) -> FaultInjector:
        """Fault injection: ``add(operation, kind, rate=, count=, delay=, retry_after=)``, ``clear()``."""
        return self._running_app().faults

    def mutate(
        self, count: int = 5, kinds: Sequence[str] | None = None, seed: int | None = None
    ) -> list[Mutation]:
        """Apply ``count`` random changes (kinds from :data:`rorclient.sandbox.mutations.MUTATION_KINDS`),
        stamped with the sandbox clock; ``seed`` makes this call's draws independent of earlier ones."""
        return self._running_app().mutate(count, kinds, seed)

    def snapshot(self) -> list[dict[str, Any]]:
        """The ground truth in the export-contract shape (kind, id, parent, name, updated, closed,
        deleted, establishment), sorted by kind then id."""
        return self._running_app().truth.snapshot()

    def stats(self) -> dict[str, int]:
        """Request counters per operation, faults injected, TLS handshakes refused."""
        return self._running_app().stats()

    def offer(self, establishment_id: str) -> Offer | None:
        """The current offer of one establishment (unfiltered), ``None`` if unknown."""
        return self._running_app().truth.offer(establishment_id)

    def establishment_count(self) -> int:
        """How many establishments the sandbox serves now (cheap, unlike :meth:`establishment_ids`)."""
        return self._running_app().truth.count()

    def establishment_ids(self) -> list[str]:
        """Every current establishment id, in serving order (a full pass over the data)."""
        return [offer.establishments[0].id for offer in self._running_app().truth.offers()]

    def put_offer(self, offer: Offer) -> None:
        """Replace an establishment's offer, or add one (exactly one establishment per offer)."""
        self._running_app().truth.put(offer)

    def remove_establishment(self, establishment_id: str) -> bool:
        """Make an establishment unknown (Lecture answers the inline error; Notif reports it once)."""
        app = self._running_app()
        return app.truth.remove(establishment_id, app.clock.now())

    def write_client_config(
        self,
        path: str | Path,
        source_name: str = "sandbox",
        *,
        store_url: str | None = None,
        kinds: Sequence[Literal["csd", "fhir"]] = ("csd",),
        fhir_source_name: str | None = None,
        fhir_secret_env: str | None = None,
    ) -> Path:
        """Write a rorclient TOML configuration (docs/configuration.md) for this sandbox and return its path.

        ``kinds`` chooses the sources written: ``csd`` (named ``source_name``) and/or ``fhir`` (named
        ``fhir_source_name``, default ``source_name`` alone or ``<source_name>-fhir`` beside a csd one).
        A source points at the PKCS#12 client certificate, a 0600 password file beside it and the CA
        bundle; these live in the PKI directory (``tls_dir``, or a temporary one removed by :meth:`stop`).
        The fhir source authenticates with the certificate (access profile 1, ``CU22``), or, given
        ``fhir_secret_env``, with the secret read from that environment variable (profile 0, ``CU23``).
        """
        if not kinds:
            raise ConfigError("write_client_config needs at least one source kind")
        pki = self.pki
        password_file = pki.directory / _PASSWORD_FILE
        _write_private(password_file, pki.password.get_secret_value() + "\n")
        lines = []
        if store_url is not None:
            lines += ["[store]", f"url = {_toml(store_url)}", ""]
        certificate = [
            f"client_cert = {_toml(str(pki.client.pkcs12))}",
            f"password_file = {_toml(str(password_file))}",
        ]
        if "csd" in kinds:
            lines += [
                "[[sources]]",
                f"name = {_toml(source_name)}",
                'kind = "csd"',
                f"soap_url = {_toml(self.soap_url)}",
                f"extraction_url = {_toml(self.extraction_url)}",
                *certificate,
                f"ca_bundle = {_toml(str(pki.ca_bundle))}",
            ]
        if "fhir" in kinds:
            name = fhir_source_name or (f"{source_name}-fhir" if "csd" in kinds else source_name)
            if lines:
                lines.append("")
            auth = [f"client_secret_env = {_toml(fhir_secret_env)}"] if fhir_secret_env else certificate
            profile = "CU23" if fhir_secret_env else "CU22"
            lines += [
                "[[sources]]",
                f"name = {_toml(name)}",
                'kind = "fhir"',
                f"base_url = {_toml(self.fhir_url)}",
                f"token_url = {_toml(self.token_url)}",
                f"client_id = {_toml(self.options.fhir_client_id)}",
                *auth,
                f"ca_bundle = {_toml(str(pki.ca_bundle))}",
                f'profile_code = "{profile}"',
                'profile_system = "1.2.250.1.213.1.6.1.66"',
                'role_code = "AUTOMATE"',
                'role_system = "1.2.250.1.213.1.1.4.6"',
            ]
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return target

    def _running_app(self) -> SandboxApp:
        if self._app is None or self._server is None:
            raise ConfigError("the sandbox is not running")
        return self._app

    def _running_server(self) -> SandboxHTTPServer:
        if self._server is None:
            raise ConfigError("the sandbox is not running")
        return self._server


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------


def _base(options: SandboxOptions) -> Base:
    if options.data_dir is None:
        return GeneratedBase(options.seed, options.establishments)
    from rorclient.csd.reader import read_csd

    directory = options.data_dir
    if not directory.is_dir():
        raise ConfigError(f"sandbox data directory not found: {directory}")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith((".xml", ".gz", ".zip")))
    if not files:
        raise ConfigError(f"no CSD file (.xml, .xml.gz, .zip) in {directory}")
    entities = itertools.chain.from_iterable(read_csd(path) for path in files)
    return MemoryBase(offers_by_establishment(entities))


def _ssl_context(pki: TestPki, options: SandboxOptions) -> ssl.SSLContext:
    context = server_ssl_context(pki, check_revocation=options.check_revocation)
    if options.client_cert == "optional":
        context.verify_mode = ssl.CERT_OPTIONAL
    elif options.client_cert == "none":
        context.verify_mode = ssl.CERT_NONE
    return context


def _index_quietly(truth: GroundTruth) -> None:
    with contextlib.suppress(ConfigError):  # interrupted by stop()
        truth.base_index()


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def default_tls_dir() -> Path:
    """Where :func:`serve_forever` keeps its PKI by default, so that written client configs stay valid."""
    return Path(platformdirs.user_data_dir("rorclient")) / "sandbox-pki"


def serve_forever(
    *,
    port: int = 8443,
    seed: int = 0,
    establishments: int = 200,
    tls_dir: Path | None = None,
    write_config: Path | None = None,
    config_kinds: Sequence[Literal["csd", "fhir"]] = ("csd",),
    test_mode: bool = False,
    platines_fixture: bool = True,
    host: str = "127.0.0.1",
    announce: Callable[[str], None] = print,
    stop: threading.Event | None = None,
    **settings: Any,
) -> None:
    """Run a sandbox until Ctrl-C, SIGTERM or ``stop`` is set (the ``rorclient sandbox`` command).

    ``tls_dir`` defaults to :func:`default_tls_dir` (reused across runs); ``write_config`` writes a
    client configuration there, with a source of each of ``config_kinds``; ``announce`` receives the
    human-readable lines (endpoints, files). Other keyword arguments are :class:`SandboxOptions`
    fields. Raises :class:`ConfigError` when the port is taken or an option is invalid.
    """
    stop = stop or threading.Event()
    sandbox = Sandbox(
        port=port,
        seed=seed,
        establishments=establishments,
        tls_dir=tls_dir or default_tls_dir(),
        test_mode=test_mode,
        platines_fixture=platines_fixture,
        host=host,
        **settings,
    )
    with sandbox, _stop_on_signals() as signalled:
        pki = sandbox.pki
        size = f"{sandbox.establishment_count()} establishments, seed {seed}"
        announce(f"ROR sandbox listening on {sandbox.base_url} ({size})")
        announce(f"  SOAP (Notif, Lecture): {sandbox.soap_url}")
        announce(f"  extraction:            {sandbox.extraction_url}  (?format=xml|gzip|zip)")
        announce(f"  FHIR base:             {sandbox.fhir_url}")
        announce(
            f"  FHIR token endpoint:   {sandbox.token_url}  (client_id {sandbox.options.fhir_client_id})"
        )
        announce(
            f"  client certificate:    {pki.client.pkcs12} (PEM: {pki.client.certificate}, {pki.client.key})"
        )
        announce(f"  CA bundle:             {pki.ca_bundle}")
        if platines_fixture:
            announce(f"  PLATINES establishment: {PLATINES_ESTABLISHMENT_ID}")
        if test_mode:
            announce(f"  control API:           {sandbox.base_url}/_sandbox/")
        if write_config is not None:
            written = sandbox.write_client_config(write_config, kinds=config_kinds)
            announce(f"  client configuration:  {written} ({' and '.join(config_kinds)} source)")
        announce("Press Ctrl-C to stop.")
        try:
            while not (stop.is_set() or signalled.requested):
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        announce("Stopping the sandbox.")


class _Signalled:
    """A stop request from a signal handler: a plain attribute, since a handler that took a lock (as
    ``threading.Event.set`` does) could deadlock on the very lock the interrupted code holds."""

    requested = False


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[_Signalled]:
    """Note SIGTERM and SIGINT. SIGINT is handled explicitly: a process started in the background by a
    non-interactive shell inherits it ignored, and would otherwise never stop on it."""
    signalled = _Signalled()
    if threading.current_thread() is not threading.main_thread():
        yield signalled
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        signalled.requested = True

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield signalled
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


def pytest_fixture(
    *,
    scope: Literal["session", "package", "module", "class", "function"] = "module",
    name: str = "sandbox",
    **settings: Unpack[SandboxSettings],
) -> Any:
    """A pytest fixture yielding a running :class:`Sandbox`; put in a ``conftest.py``::

        from rorclient.sandbox import pytest_fixture

        sandbox = pytest_fixture(establishments=10, platines_fixture=True)

    (pytest is only needed by the code that calls this.)
    """
    import pytest

    @pytest.fixture(scope=scope, name=name)
    def _sandbox() -> Iterator[Sandbox]:
        with Sandbox(**settings) as sandbox:
            yield sandbox

    return _sandbox
