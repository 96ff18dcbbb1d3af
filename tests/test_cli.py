"""The command line, as users and outside tools drive it (exit codes, export contract)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from rorclient.cli import main
from rorclient.models import EntityKind
from rorclient.sandbox.dataset import write_extraction
from rorclient.sandbox.pki import build_test_pki

CONTRACT_FIELDS = {"kind", "id", "parent", "name", "updated", "closed", "deleted", "source"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def export_lines(capsys: pytest.CaptureFixture[str], store: str, *extra: str) -> list[dict[str, object]]:
    code, out, _ = run(capsys, "--store", store, "export", "--format", "jsonl", *extra)
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


def test_load_then_export_follows_the_contract(
    tmp_path: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 't.db'}"
    code, out, _ = run(capsys, "--store", store, "load", str(samples_dir / "lecture_response_full_body.xml"))
    assert code == 0 and "6 created" in out
    lines = export_lines(capsys, store)
    by_id = {(line["kind"], line["id"]): line for line in lines}
    assert all(line.keys() >= CONTRACT_FIELDS for line in lines)
    assert by_id[("legal_entity", "1830000001")]["parent"] is None
    assert by_id[("establishment", "1830000002")]["parent"] == "1830000001"
    pole, ue = by_id[("unit", "93/10000")], by_id[("unit", "93/12345")]
    assert pole["parent"] == "1830000002" and pole["establishment"] == "1830000002"
    assert ue["parent"] == "93/10000" and ue["establishment"] == "1830000002"
    assert by_id[("activity", "93/12345#037")]["parent"] == "93/12345"
    assert by_id[("equipment", "93/12345#046")]["name"] == "Holter ECG"
    assert {line["source"] for line in lines} == {"files"}
    assert not any(line["closed"] or line["deleted"] for line in lines)
    assert by_id[("establishment", "1830000002")]["updated"] == "2019-03-02T08:30:00"


def test_a_source_snapshot_that_shrinks_leaves_tombstones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big, small = tmp_path / "big.xml", tmp_path / "small.xml"
    write_extraction(big, seed=7, establishments=6)
    write_extraction(small, seed=7, establishments=3)  # a prefix of the same dataset
    store = f"sqlite:///{tmp_path / 's.db'}"
    assert run(capsys, "--store", store, "load", str(big), "--source", "od")[0] == 0
    assert run(capsys, "--store", store, "load", str(small), "--source", "od")[0] == 0
    lines = export_lines(capsys, store)
    deleted = [line for line in lines if line["deleted"]]
    assert deleted and all(line["source"] == "od" for line in deleted)
    live = export_lines(capsys, store, "--live")
    assert len(live) == len(lines) - len(deleted)
    _, out, _ = run(capsys, "--store", store, "changes", "--since", "0")
    changes = [json.loads(line) for line in out.splitlines()]
    assert [c["seq"] for c in changes] == sorted(c["seq"] for c in changes)
    assert sum(c["change"] == "deleted" for c in changes) == len(deleted)
    last = changes[-1]["seq"]
    assert run(capsys, "--store", store, "changes", "--since", str(last))[1] == ""


def test_loading_the_same_files_twice_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "x.xml.gz"
    write_extraction(data, seed=3, establishments=4, compress="gzip")
    store = f"sqlite:///{tmp_path / 'i.db'}"
    run(capsys, "--store", store, "load", str(data))
    code, out, _ = run(capsys, "--store", store, "load", str(data), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["entities"] > 0 and not any(report["counts"].values())


def test_a_bad_file_exits_3_and_leaves_the_store_unchanged(
    tmp_path: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'b.db'}"
    run(capsys, "--store", store, "load", str(samples_dir / "lecture_response_full_body.xml"))
    before = export_lines(capsys, store)
    truncated = tmp_path / "truncated.xml"
    truncated.write_bytes((samples_dir / "lecture_response_full_body.xml").read_bytes()[:3000])
    code, _, err = run(capsys, "--store", store, "load", str(truncated))
    assert code == 3 and "truncated.xml" in err
    assert export_lines(capsys, store) == before
    code, out, _ = run(capsys, "--store", store, "status", "--json")
    runs = json.loads(out)["recent_runs"]
    assert runs[0]["status"] == "failed" and runs[0]["error"]


def test_a_saved_error_answer_is_a_bad_file_named_in_the_message(
    tmp_path: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'e.db'}"
    code, _, err = run(capsys, "--store", store, "load", str(samples_dir / "error_body.xml"))
    assert code == 3
    assert "error_body.xml" in err and "error answer" in err


def test_loading_a_directory_says_it_is_not_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--store", f"sqlite:///{tmp_path / 'd.db'}", "load", str(tmp_path))
    assert code == 2 and "not a file" in err and "not found" not in err


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["load", "/nonexistent/file.xml"], 2),
        (["--store", "nosuch://x", "status"], 2),
        (["changes", "--since", "-1"], 2),
        ([], 2),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int
) -> None:
    args = argv if "--store" in argv else ["--store", f"sqlite:///{tmp_path / 'u.db'}", *argv]
    assert run(capsys, *args)[0] == code


def test_status_json_reports_sources_and_counts(
    tmp_path: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'st.db'}"
    run(capsys, "--store", store, "load", str(samples_dir / "lecture_response_body.xml"), "--source", "s1")
    code, out, _ = run(capsys, "--store", store, "status", "--json")
    status = json.loads(out)
    assert code == 0
    assert status["sources"]["s1"]["entities"] == sum(status["entities"].values())
    assert list(status["entities"]) == [kind.value for kind in EntityKind]  # zero counts included
    assert status["sources"]["s1"]["watermark"] is not None
    assert status["recent_runs"][0]["operation"] == "load"


def test_export_labels_codes_from_a_nomenclature(
    tmp_path: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests._shared import NOMENCLATURES

    # The same document with the activity's label removed: only the nomenclature can name it.
    text = (samples_dir / "lecture_response_full_body.xml").read_text()
    bare = tmp_path / "bare.xml"
    bare.write_text(text.replace(">Dermatologie</csd:codedType>", "/>"))
    store = f"sqlite:///{tmp_path / 'n.db'}"
    run(capsys, "--store", store, "load", str(bare))
    unlabelled = [x for x in export_lines(capsys, store) if x["kind"] == "activity"]
    assert [x["name"] for x in unlabelled] == ["037"]
    nos = str(NOMENCLATURES / "2023-06-14_NOS-Fichiers_Publics.zip")
    code, out, _ = run(capsys, "--nomenclature", nos, "--store", store, "export", "--format", "jsonl")
    labelled = [json.loads(x) for x in out.splitlines() if '"activity"' in x]
    assert code == 0 and [x["name"] for x in labelled] == ["Dermatologie"]


def test_demo_runs_end_to_end_on_a_fresh_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = f"sqlite:///{tmp_path / 'demo.db'}"
    code, out, _ = run(capsys, "--store", store, "demo", "--establishments", "8")
    assert code == 0
    assert "pull demo: success" in out
    assert "sync demo: success" in out
    assert " moved " in out and " created " in out and " closed " in out
    assert "refresh of unit" in out
    # the region then moves to the FHIR face: every row taken over (same identities), none created
    (switch,) = [line for line in out.splitlines() if line.startswith("7. ")]
    assert "pull demo-fhir: success" in switch and " updated" in switch and "created" not in switch
    assert "sync demo-fhir: success" in out
    lines = export_lines(capsys, store)
    assert {line["source"] for line in lines} == {"demo-fhir"}
    code, out, _ = run(capsys, "--store", store, "changes", "--since", "0")
    kinds = {json.loads(line)["change"] for line in out.splitlines()}
    assert {"created", "updated", "closed", "moved"} <= kinds


def test_generate_writes_a_loadable_extraction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "gen.xml.zip"
    code, _, _ = run(capsys, "generate", str(out_file), "--establishments", "3", "--compress", "zip")
    assert code == 0 and out_file.read_bytes()[:2] == b"PK"
    store = f"sqlite:///{tmp_path / 'g.db'}"
    assert run(capsys, "--store", store, "load", str(out_file))[0] == 0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return build_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize(
    ("certificate", "code"),
    [("client", 0), ("expired", 54), ("not_yet_valid", 55), ("seal", 56)],
)
def test_cert_inspect_exit_code_tells_whether_the_certificate_can_authenticate(
    pki, capsys: pytest.CaptureFixture[str], certificate: str, code: int, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    path = getattr(pki, certificate).certificate
    assert run(capsys, "cert", "inspect", str(path))[0] == code
    password_file = tmp_path / "pw"
    password_file.write_text(pki.password.get_secret_value())
    password_file.chmod(0o600)  # a password file others can read is refused
    exit_code, out, _ = run(
        capsys,
        "cert",
        "inspect",
        str(getattr(pki, certificate).pkcs12),
        "--password-file",
        str(password_file),
        "--json",
    )
    assert exit_code == code
    info = json.loads(out)
    assert info["can_authenticate_tls_client"] is (code == 0)
    assert pki.password.get_secret_value() not in out


def test_cert_inspect_with_a_wrong_password_exits_52(pki, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(capsys, "cert", "inspect", str(pki.client.pkcs12), "--password-env", "RORCLIENT_NOPE")
    assert code in (52,)
    assert "RORCLIENT_NOPE" in err


def test_an_interrupt_swallowed_by_a_callback_still_stops_the_load(
    tmp_path: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C raised inside a C callback that swallows it (seen once in pydantic's serializer) must not
    let the load commit: the command exits 130 and the store keeps what it had."""
    import signal

    from rorclient.sync import _pull

    store = f"sqlite:///{tmp_path / 'i.db'}"
    run(capsys, "--store", store, "load", str(samples_dir / "lecture_response_body.xml"))
    before = export_lines(capsys, store)
    real_read = _pull.read_values  # what a load into a SQL store reads with

    def read_and_swallow_a_sigint(*args: Any, **kwargs: Any) -> Any:
        for number, entity in enumerate(real_read(*args, **kwargs)):
            if number == 1:
                handler = signal.getsignal(signal.SIGINT)
                assert callable(handler)
                with contextlib.suppress(KeyboardInterrupt):  # what the C callback did
                    handler(signal.SIGINT, None)
            yield entity

    monkeypatch.setattr(_pull, "read_values", read_and_swallow_a_sigint)
    code, _, err = run(capsys, "--store", store, "load", str(samples_dir / "lecture_response_full_body.xml"))
    assert code == 130 and "interrupted" in err
    assert export_lines(capsys, store) == before


@pytest.mark.parametrize("inherited", ["ignored", "the application's own"])
def test_the_load_guard_leaves_an_ignored_or_custom_sigint_alone(inherited: str) -> None:
    """A background job of a script inherits SIGINT ignored; an application may have its own handler."""
    import signal

    from rorclient._interrupt import InterruptGuard

    def own(signum: int, frame: object) -> None:
        pass

    handler = signal.SIG_IGN if inherited == "ignored" else own
    previous = signal.signal(signal.SIGINT, handler)
    try:
        with InterruptGuard() as guard:
            assert signal.getsignal(signal.SIGINT) is handler
            guard.check()  # nothing to raise
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)
