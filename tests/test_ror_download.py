"""Extraction downloads: streamed to ``.part``, resumed with Range/If-Range, verified, renamed atomically."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rorclient.errors import ConfigError
from rorclient.ror import (
    ClientOptions,
    HttpRequest,
    HttpResponse,
    HttpStatusError,
    IncompleteResponseError,
    RetryPolicy,
    RorClient,
    ServerBusyError,
)
from rorclient.ror._download import part_paths

URL = "https://ror.test/ROR/extraction"
CONTENT = bytes(range(256)) * 4096  # 1 MiB


class Cut(Exception):
    """Raised by a progress callback to simulate an interrupted download."""


class FileServer:
    """Serves one file with a strong ETag, Range/If-Range support and scripted faults."""

    def __init__(self, content: bytes = CONTENT, etag: str = '"v1"') -> None:
        self.content = content
        self.etag = etag
        self.requests: list[HttpRequest] = []
        self.cut_after: list[int] = []  # per request: stop the body after this many bytes
        self.statuses: list[int] = []  # per request: answer this status instead
        self.honour_ranges = True

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        if self.statuses:
            return HttpResponse(status=self.statuses.pop(0), headers={"Retry-After": "1"})
        start, status = 0, 200
        headers = {"ETag": self.etag, "Accept-Ranges": "bytes"}
        wanted = request.headers.get("range")
        if wanted and self.honour_ranges and request.headers.get("if-range") == self.etag:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            if start >= len(self.content):
                return HttpResponse(status=416, headers={"Content-Range": f"bytes */{len(self.content)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(self.content) - 1}/{len(self.content)}"
        body = self.content[start:]
        headers["Content-Length"] = str(len(body))
        limit = self.cut_after.pop(0) if self.cut_after else None
        return HttpResponse(status=status, headers=headers, chunks=Body(body, limit))


class Body:
    def __init__(self, data: bytes, cut_after: int | None) -> None:
        self.data, self.cut_after = data, cut_after

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for offset in range(0, len(self.data), 32 * 1024):
            chunk = self.data[offset : offset + 32 * 1024]
            if self.cut_after is not None and sent + len(chunk) > self.cut_after:
                yield chunk[: self.cut_after - sent]
                raise ConnectionResetError("peer closed connection without sending complete message body")
            sent += len(chunk)
            yield chunk


def client(server: FileServer, **options: object) -> RorClient:
    options.setdefault("retry", RetryPolicy(wait_scale=0))
    return RorClient(
        name="idf",
        extraction_url=URL,
        options=ClientOptions(handler=server, **options),  # type: ignore[arg-type]
    )


def cut_at(fraction: float) -> Callable[[int, int | None], None]:
    limit = int(len(CONTENT) * fraction)

    def progress(done: int, total: int | None) -> None:
        assert total == len(CONTENT)
        if done >= limit:
            raise Cut(done)

    return progress


def test_plain_download(tmp_path: Path) -> None:
    server = FileServer()
    seen: list[tuple[int, int | None]] = []
    with client(server) as ror:
        result = ror.download_extraction(tmp_path / "ror.xml", progress=lambda d, t: seen.append((d, t)))
    assert (tmp_path / "ror.xml").read_bytes() == CONTENT
    assert (result.bytes, result.bytes_transferred, result.resumed, result.etag) == (
        len(CONTENT),
        len(CONTENT),
        False,
        '"v1"',
    )
    assert result.compressed is None and result.url == URL
    assert seen[-1] == (len(CONTENT), len(CONTENT)) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert not any(p.exists() for p in part_paths(tmp_path / "ror.xml"))
    assert server.requests[0].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_a_download_cut_by_the_caller_resumes_where_it_stopped(tmp_path: Path, fraction: float) -> None:
    server = FileServer()
    dest = tmp_path / "ror.xml"
    with client(server) as ror:
        with pytest.raises(Cut) as cut:
            ror.download_extraction(dest, progress=cut_at(fraction))
        kept = part_paths(dest)[0].stat().st_size
        assert kept == cut.value.args[0] and not dest.exists()
        result = ror.download_extraction(dest)
    assert dest.read_bytes() == CONTENT
    assert result.resumed and result.bytes_transferred == len(CONTENT) - kept
    assert server.requests[-1].headers["range"] == f"bytes={kept}-"
    assert server.requests[-1].headers["if-range"] == '"v1"'


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_a_connection_cut_is_retried_from_where_it_stopped(tmp_path: Path, fraction: float) -> None:
    server = FileServer()
    cut = int(len(CONTENT) * fraction)
    server.cut_after = [cut]
    with client(server) as ror:
        result = ror.download_extraction(tmp_path / "ror.xml")
    assert (tmp_path / "ror.xml").read_bytes() == CONTENT
    assert len(server.requests) == 2 and server.requests[1].headers["range"] == f"bytes={cut}-"
    assert result.resumed and result.bytes_transferred == len(CONTENT)
    assert hashlib.sha256((tmp_path / "ror.xml").read_bytes()).digest() == hashlib.sha256(CONTENT).digest()


def test_repeated_cuts_still_give_the_whole_file(tmp_path: Path) -> None:
    server = FileServer()
    server.cut_after = [100_000, 200_000, 300_000]
    with client(server, retry=RetryPolicy(max_attempts=5, wait_scale=0)) as ror:
        result = ror.download_extraction(tmp_path / "ror.xml")
    assert (tmp_path / "ror.xml").read_bytes() == CONTENT
    assert len(server.requests) == 4 and result.bytes_transferred == len(CONTENT)


def test_a_changed_file_restarts_from_zero(tmp_path: Path) -> None:
    server = FileServer()
    dest = tmp_path / "ror.xml"
    with client(server) as ror:
        with pytest.raises(Cut):
            ror.download_extraction(dest, progress=cut_at(0.5))
        server.content, server.etag = CONTENT[::-1], '"v2"'
        result = ror.download_extraction(dest)
    assert dest.read_bytes() == CONTENT[::-1]
    assert result.restarts == 1 and not result.resumed and result.etag == '"v2"'
    assert result.bytes_transferred == len(CONTENT)


def test_a_server_ignoring_ranges_restarts_from_zero(tmp_path: Path) -> None:
    server = FileServer()
    server.honour_ranges = False
    dest = tmp_path / "ror.xml"
    with client(server) as ror:
        with pytest.raises(Cut):
            ror.download_extraction(dest, progress=cut_at(0.5))
        result = ror.download_extraction(dest)
    assert dest.read_bytes() == CONTENT and not result.resumed


def test_a_part_of_another_url_is_not_reused(tmp_path: Path) -> None:
    dest = tmp_path / "ror.xml"
    part, sidecar = part_paths(dest)
    part.write_bytes(b"x" * 1000)
    sidecar.write_text(json.dumps({"version": 1, "url_sha256": "0" * 64, "etag": '"v1"', "length": 5}))
    server = FileServer()
    with client(server) as ror:
        result = ror.download_extraction(dest)
    assert dest.read_bytes() == CONTENT and not result.resumed
    assert "Range" not in server.requests[0].headers


def test_a_complete_part_answered_416_is_downloaded_again(tmp_path: Path) -> None:
    server = FileServer()
    dest = tmp_path / "ror.xml"
    with client(server) as ror:
        with pytest.raises(Cut):
            ror.download_extraction(dest, progress=cut_at(1.0))
        assert part_paths(dest)[0].stat().st_size == len(CONTENT)
        result = ror.download_extraction(dest)
    assert dest.read_bytes() == CONTENT
    assert [r.headers.get("range") for r in server.requests[1:]] == [f"bytes={len(CONTENT)}-", None]
    assert not result.resumed


def test_a_short_body_is_an_incomplete_response_when_retries_run_out(tmp_path: Path) -> None:
    server = FileServer()
    server.cut_after = [1000, 1000]
    retry = RetryPolicy(max_attempts=2, wait_scale=0)
    with client(server, retry=retry) as ror, pytest.raises(IncompleteResponseError):
        ror.download_extraction(tmp_path / "ror.xml")
    assert not (tmp_path / "ror.xml").exists()
    assert part_paths(tmp_path / "ror.xml")[0].stat().st_size == 2000


def test_busy_server_is_retried_and_other_statuses_fail(tmp_path: Path) -> None:
    server = FileServer()
    server.statuses = [503, 503]
    with client(server) as ror:
        assert ror.download_extraction(tmp_path / "a.xml").bytes == len(CONTENT)
    server.statuses = [503] * 10
    with (
        client(server, retry=RetryPolicy(max_attempts=2, wait_scale=0)) as ror,
        pytest.raises(ServerBusyError),
    ):
        ror.download_extraction(tmp_path / "b.xml")
    server.statuses = [404]
    with client(server) as ror, pytest.raises(HttpStatusError) as caught:
        ror.download_extraction(tmp_path / "c.xml")
    assert caught.value.status == 404


def test_existing_file_is_replaced_only_when_the_new_one_is_complete(tmp_path: Path) -> None:
    dest = tmp_path / "ror.xml"
    dest.write_bytes(b"previous extraction")
    server = FileServer()
    with client(server) as ror:
        with pytest.raises(Cut):
            ror.download_extraction(dest, progress=cut_at(0.5))
        assert dest.read_bytes() == b"previous extraction"
        ror.download_extraction(dest)
    assert dest.read_bytes() == CONTENT


def zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ror.xml", data)
    return buffer.getvalue()


@pytest.mark.parametrize(("content", "kind"), [(gzip.compress(CONTENT), "gzip"), (zipped(CONTENT), "zip")])
def test_compressed_files_are_kept_as_sent_and_reported(tmp_path: Path, content: bytes, kind: str) -> None:
    with client(FileServer(content)) as ror:
        result = ror.download_extraction(tmp_path / "ror.bin")
    assert result.compressed == kind and (tmp_path / "ror.bin").read_bytes() == content


def test_a_source_without_extraction_url() -> None:
    with RorClient(name="x") as ror, pytest.raises(ConfigError, match="no extraction_url"):
        ror.download_extraction("somewhere.xml")


def test_load_file_reads_a_local_file_or_downloads_a_url_first(tmp_path: Path, samples_dir: Path) -> None:
    document = (samples_dir / "lecture_response_full_body.xml").read_bytes()
    local = tmp_path / "open-data.xml.gz"
    local.write_bytes(gzip.compress(document))
    server = FileServer(gzip.compress(document))
    with client(server, cache_dir=tmp_path / "cache") as ror:
        from_file = [e.id for e in ror.load_file(local)]
        from_url = [e.id for e in ror.load_file("https://ror.test/open-data/ror.xml.gz")]
    assert from_file == from_url and len(from_file) > 3
    assert next(p.name for p in (tmp_path / "cache" / "downloads").iterdir()).endswith("-ror.xml.gz")


def test_an_unwritable_destination_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "ror.xml").mkdir()
    with client(FileServer()) as ror, pytest.raises(ConfigError, match="cannot write"):
        ror.download_extraction(tmp_path / "ror.xml")
