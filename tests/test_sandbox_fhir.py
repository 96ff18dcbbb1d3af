"""The sandbox's FHIR face: token endpoint, access checks, searches with paging, includes and the
truncation limit, $export jobs in each file shape, faults; checked with raw HTTP and with FhirClient."""

from __future__ import annotations

import datetime as dt
import json
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rorclient.fhir import (
    FhirAuthError,
    FhirClient,
    FhirError,
    FhirOptions,
    FhirTruncatedError,
    region_type_filter,
)
from rorclient.ror import RetryPolicy
from rorclient.sandbox import Sandbox
from rorclient.tls import Credentials
from tests._fhir_mapper import simple_resources
from tests._sandbox_support import client_context

ROR = {
    "Ror-Profil-Utilisateur-Code": "CU22",
    "Ror-Profil-Utilisateur-System": "1.2.250.1.213.1.6.1.66",
    "Ror-Role-Metier-Code": "AUTOMATE",
    "Ror-Role-Metier-System": "1.2.250.1.213.1.1.4.6",
}
FAST = RetryPolicy(max_attempts=4, wait_scale=0)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    from rorclient.fhir import client as client_module

    recorded: list[float] = []
    monkeypatch.setattr(client_module, "_sleep", recorded.append)
    return recorded


def start(**settings: Any) -> Sandbox:
    values: dict[str, Any] = {
        "establishments": 4,
        "seed": 3,
        "fhir_mapper": simple_resources,
        "client_cert": "optional",
        "fhir_poll_retry_after": 0,
        "build_index": "lazy",
    }
    values.update(settings)
    return Sandbox(**values).start()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = start()
    try:
        yield sb
    finally:
        sb.stop()


def client(sb: Sandbox, *, mtls: bool = False, **changes: Any) -> FhirClient:
    values: dict[str, Any] = {
        "base_url": sb.fhir_url,
        "token_url": sb.token_url,
        "client_id": sb.options.fhir_client_id,
        "profile_code": ROR["Ror-Profil-Utilisateur-Code"],
        "profile_system": ROR["Ror-Profil-Utilisateur-System"],
        "role_code": ROR["Ror-Role-Metier-Code"],
        "role_system": ROR["Ror-Role-Metier-System"],
        "retry": FAST,
        "poll_interval": 0.0,
    }
    if mtls:
        pki = sb.pki
        values["credentials"] = Credentials.load(
            pki.client.pkcs12, password=pki.password, ca_bundle=pki.ca_bundle
        )
    else:
        values["client_secret"] = sb.options.fhir_client_secret
        values["ca_bundle"] = sb.pki.ca_bundle
    values.update(changes)
    return FhirClient(FhirOptions(**values))


def raw(sb: Sandbox, *, certificate: bool = False) -> httpx.Client:
    return httpx.Client(verify=client_context(sb.pki, sb.pki.client if certificate else None), timeout=20)


def token(sb: Sandbox) -> str:
    with raw(sb) as http:
        answer = http.post(
            sb.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": sb.options.fhir_client_id,
                "client_secret": sb.options.fhir_client_secret,
            },
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == sb.options.fhir_token_lifetime
    return str(body["access_token"])


def expected(sb: Sandbox, *, regions: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every resource the sandbox serves (profile 1), by ``Type/id``: mapped from its ground truth."""
    found: dict[str, dict[str, Any]] = {}
    for offer in sb._running_app().truth.offers():
        resources = list(simple_resources(offer.entities()))
        tags = {tag["code"] for r in resources for tag in r.get("meta", {}).get("tag", [])}
        if regions is not None and not tags & regions:
            continue
        for resource in resources:
            found.setdefault(f"{resource['resourceType']}/{resource['id']}", resource)
    return found


def keyed(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for resource in resources:
        key = f"{resource['resourceType']}/{resource['id']}"
        assert key not in found, f"{key} served twice"
        found[key] = resource
    return found


# --------------------------------------------------------------------------------------------------------
# auth and access


def test_token_with_the_secret_then_a_search(sandbox: Sandbox) -> None:
    with client(sandbox) as fhir:
        services = list(fhir.search("HealthcareService", []))
    assert keyed(services) == {
        k: v for k, v in expected(sandbox).items() if k.startswith("HealthcareService/")
    }
    assert services


def test_token_with_the_certificate_and_no_secret(sandbox: Sandbox) -> None:
    with client(sandbox, mtls=True) as fhir:
        assert list(fhir.search("Location", []))


def test_a_wrong_secret_is_refused(sandbox: Sandbox) -> None:
    with client(sandbox, client_secret="not-it") as fhir, pytest.raises(FhirAuthError) as caught:
        list(fhir.search("Location", []))
    assert caught.value.error == "invalid_client"
    assert "not-it" not in str(caught.value)


def test_no_secret_and_no_certificate_is_refused(sandbox: Sandbox) -> None:
    with raw(sandbox) as http:
        answer = http.post(
            sandbox.token_url,
            data={"grant_type": "client_credentials", "client_id": sandbox.options.fhir_client_id},
        )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_api_calls_need_a_live_token_and_the_ror_headers(sandbox: Sandbox) -> None:
    url = f"{sandbox.fhir_url}/Organization"
    bearer = {"Authorization": f"Bearer {token(sandbox)}"}
    with raw(sandbox) as http:
        assert http.get(url, headers=ROR).status_code == 401
        assert http.get(url, headers={**ROR, "Authorization": "Bearer forged"}).status_code == 401
        missing = http.get(url, headers={**bearer, "Ror-Role-Metier-Code": "AUTOMATE"})
        assert missing.status_code == 400
        assert missing.json()["issue"][0]["code"] == "required"
        unknown = http.get(url, headers={**bearer, **ROR, "Ror-Profil-Utilisateur-Code": "CU99"})
        assert unknown.status_code == 403 and unknown.json()["resourceType"] == "OperationOutcome"
        assert http.get(url, headers={**bearer, **ROR}).status_code == 200
        assert http.get(f"{sandbox.fhir_url}/metadata").json()["resourceType"] == "CapabilityStatement"


def test_tokens_are_short_lived_and_the_client_renews_them() -> None:
    sb = start(fhir_token_lifetime=1.0)
    try:
        issued = token(sb)
        time.sleep(1.1)
        with raw(sb) as http:
            answer = http.get(f"{sb.fhir_url}/Location", headers={**ROR, "Authorization": f"Bearer {issued}"})
        assert answer.status_code == 401
        with client(sb) as fhir:
            list(fhir.search("Location", []))
            time.sleep(0.6)  # past half the lifetime: renewed before use
            list(fhir.search("Location", []))
            assert fhir.tokens_fetched == 2
    finally:
        sb.stop()


def test_profile_filters_what_is_served(sandbox: Sandbox) -> None:
    with client(sandbox, profile_code="CU23") as public, client(sandbox) as full:
        seen_public = keyed(list(public.search("Organization", [])))
        seen_full = keyed(list(full.search("Organization", [])))
    assert set(seen_public) <= set(seen_full)


# --------------------------------------------------------------------------------------------------------
# search


def test_paging_follows_getpages_links_over_one_result(sandbox: Sandbox) -> None:
    with client(sandbox, page_size=2) as fhir:
        pages = keyed(list(fhir.search("Organization", [])))
    assert pages == {k: v for k, v in expected(sandbox).items() if k.startswith("Organization/")}
    token_value = token(sandbox)
    with raw(sandbox) as http:
        first = http.get(
            f"{sandbox.fhir_url}/Organization",
            params={"_count": "2"},
            headers={**ROR, "Authorization": f"Bearer {token_value}"},
        ).json()
    assert first["total"] == len(pages)
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert next_url.startswith(f"{sandbox.fhir_url}?_getpages=")


def test_last_updated_delta_sees_only_what_changed() -> None:
    sb = start(clock_ticking=False)
    try:
        sb.clock.advance(days=1)
        changed_at = sb.clock.now()
        mutations = sb.mutate(count=3, kinds=["rename"], seed=5)
        assert mutations
        since = ("_lastUpdated", f"ge{changed_at.isoformat()}")
        with client(sb) as fhir:
            delta = keyed(list(fhir.search("Organization", [since])))
            everything = keyed(list(fhir.search("Organization", [])))
        assert delta and len(delta) < len(everything)
        renamed = {
            f"Organization/oi-{m.unit.replace('/', '-')}" if m.unit else f"Organization/eg-{m.establishment}"
            for m in mutations
        }
        assert renamed <= set(delta)
        assert all(everything[key]["meta"]["lastUpdated"] >= changed_at.isoformat()[:19] for key in delta)
    finally:
        sb.stop()


def test_the_refresh_graph_query_of_one_establishment(sandbox: Sandbox) -> None:
    truth = expected(sandbox)
    establishment = next(
        r
        for k, r in truth.items()
        if k.startswith("Organization/eg-") and any(s.get("providedBy") for s in truth.values())
    )
    establishment_id = establishment["identifier"][0]["value"]
    params = [
        ("organization.identifier:above", establishment_id),
        ("_include", "HealthcareService:location"),
        ("_revinclude", "PractitionerRole:service"),
        ("_include", "PractitionerRole:practitioner"),
        ("_include", "HealthcareService:organization"),
        ("_include:iterate", "Organization:partof"),
    ]
    with client(sandbox) as fhir:
        graph = keyed(list(fhir.search("HealthcareService", params)))
    services = {k for k in graph if k.startswith("HealthcareService/")}
    own = {
        k for k, r in truth.items() if k.startswith("HealthcareService/") and _under(truth, r, establishment)
    }
    assert services == own and services
    assert f"Organization/{establishment['id']}" in graph  # reached through partOf, iterated
    assert establishment["partOf"]["reference"] in {f"Organization/{r['id']}" for r in graph.values()}
    assert all(k.replace("HealthcareService/hs-", "Location/loc-") in graph for k in services)


def _under(truth: dict[str, dict[str, Any]], service: dict[str, Any], establishment: dict[str, Any]) -> bool:
    key: str | None = service["providedBy"]["reference"]
    while key is not None:
        if key == f"Organization/{establishment['id']}":
            return True
        parent = truth[key].get("partOf")
        key = parent["reference"] if parent else None
    return False


def test_identifier_and_unknown_parameters(sandbox: Sandbox) -> None:
    truth = expected(sandbox)
    unit = next(r for k, r in truth.items() if k.startswith("Organization/oi-"))
    value = unit["identifier"][0]["value"]
    with client(sandbox) as fhir:
        found = list(fhir.search("Organization", [("identifier", f"https://oi.esante.gouv.fr|{value}")]))
        assert [r["id"] for r in found] == [unit["id"]]
        assert list(fhir.search("Organization", [("identifier", f"other|{value}")])) == []
        with pytest.raises(FhirError) as caught:
            list(fhir.search("Organization", [("name:contains", "x")]))
    assert caught.value.status == 400 and "name:contains" in str(caught.value)


@pytest.mark.parametrize("mode", ["total", "capped", "outcome", "none"])
def test_truncation_at_the_limit_is_detected_in_every_mode(mode: str) -> None:
    sb = start(fhir_search_limit=3, fhir_truncation=mode)
    try:
        if mode in ("total", "outcome"):  # detected even by a client that does not know the limit
            with client(sb, page_size=2) as fhir, pytest.raises(FhirTruncatedError):
                list(fhir.search("Organization", []))
        with client(sb, page_size=2, truncation_limit=3) as fhir, pytest.raises(FhirTruncatedError):
            list(fhir.search("Organization", []))
    finally:
        sb.stop()


# --------------------------------------------------------------------------------------------------------
# export


@pytest.mark.parametrize(
    ("file_format", "layout", "per_file"),
    [("bundle", "mixed", 7), ("ndjson", "by_type", 5), ("bundle", "by_type", 1000)],
)
def test_export_serves_every_resource_once(
    file_format: str, layout: str, per_file: int, waits: list[float]
) -> None:
    sb = start(
        fhir_export_format=file_format,
        fhir_export_layout=layout,
        fhir_export_file_resources=per_file,
        fhir_export_polls=2,
    )
    try:
        progress: list[str | None] = []
        with client(sb) as fhir, fhir.export(on_progress=progress.append) as export:
            served = keyed(list(export.resources()))
            files = export.files
            assert export.transaction_time is not None
        assert served == expected(sb)
        assert len(progress) >= 2 and all(p and p.startswith("Build in progress") for p in progress)
        assert len(files) > 1
        if layout == "by_type":
            assert all(f.type in {"Organization", "HealthcareService", "Location"} for f in files)
        stats = sb.stats()
        assert stats["fhir_export"] == 1 and stats["fhir_download"] == len(files)
    finally:
        sb.stop()


def test_regional_export(sandbox: Sandbox, waits: list[float]) -> None:
    everything = expected(sandbox)
    regions = sorted({tag["code"] for r in everything.values() for tag in r.get("meta", {}).get("tag", [])})
    region = regions[0]
    with client(sandbox) as fhir, fhir.export(type_filter=region_type_filter([region])) as export:
        served = keyed(list(export.resources()))
    assert served == expected(sandbox, regions={region})
    assert served


def test_export_job_deleted_at_the_end(sandbox: Sandbox, waits: list[float]) -> None:
    with client(sandbox) as fhir, fhir.export() as export:
        list(export.resources())
        job = export.files[0].url.split("/$export-file/")[1].split("/")[0]
    bearer = {**ROR, "Authorization": f"Bearer {token(sandbox)}"}
    with raw(sandbox) as http:
        answer = http.get(f"{sandbox.fhir_url}/$export-poll-status", params={"_jobId": job}, headers=bearer)
    assert answer.status_code == 404 and answer.json()["issue"][0]["code"] == "not-found"


def test_export_refuses_ndjson_output_format_as_the_ror_does(sandbox: Sandbox) -> None:
    bearer = {**ROR, "Authorization": f"Bearer {token(sandbox)}"}
    with raw(sandbox) as http:
        answer = http.get(
            f"{sandbox.fhir_url}/$export", params={"_outputFormat": "application/fhir+ndjson"}, headers=bearer
        )
        kicked = http.get(
            f"{sandbox.fhir_url}/$export",
            params={"_outputFormat": "application/fhir+json", "_type": "HealthcareService"},
            headers={**bearer, "Prefer": "respond-async"},
        )
    assert answer.status_code == 400 and "_outputFormat" in answer.json()["issue"][0]["diagnostics"]
    assert kicked.status_code == 202 and "$export-poll-status?_jobId=" in kicked.headers["content-location"]


def test_export_survives_429_503_and_a_token_expiring_mid_download(waits: list[float]) -> None:
    sb = start(fhir_export_file_resources=4)
    try:
        sb.faults.add("fhir_export", "429", count=1, retry_after=0)
        sb.faults.add("fhir_status", "503", count=1, retry_after=0)
        sb.faults.add("fhir_download", "expire_token", count=1)
        sb.faults.add("fhir_search", "outcome", count=1)
        with client(sb) as fhir:
            with fhir.export() as export:
                served = keyed(list(export.resources()))
            assert list(fhir.search("Location", []))
            assert fhir.tokens_fetched == 2
        assert served == expected(sb)
        fired = sb.stats()
        assert fired["fault.429"] == 1 and fired["fault.503"] == 1 and fired["fault.expire_token"] == 1
        assert fired["fault.outcome"] == 1
    finally:
        sb.stop()


def test_export_sees_the_data_of_its_kick_off(waits: list[float]) -> None:
    sb = start(clock_ticking=False)
    try:
        with client(sb) as fhir:
            with fhir.export() as first:
                before = keyed(list(first.resources()))
            sb.clock.advance(hours=1)
            sb.mutate(count=4, seed=9)
            with fhir.export() as second:
                after = keyed(list(second.resources()))
                assert second.transaction_time and first.transaction_time
                assert second.transaction_time > first.transaction_time
        assert after == expected(sb) and after != before
    finally:
        sb.stop()


# --------------------------------------------------------------------------------------------------------
# configuration


def test_write_client_config_with_a_fhir_source(sandbox: Sandbox, tmp_path: Path) -> None:
    path = sandbox.write_client_config(tmp_path / "both.toml", kinds=("csd", "fhir"))
    sources = tomllib.loads(path.read_text())["sources"]
    assert [s["kind"] for s in sources] == ["csd", "fhir"]
    fhir = sources[1]
    assert set(fhir) == {
        "name",
        "kind",
        "base_url",
        "token_url",
        "client_id",
        "client_cert",
        "password_file",
        "ca_bundle",
        "profile_code",
        "profile_system",
        "role_code",
        "role_system",
    }
    assert fhir["name"] == "sandbox-fhir" and fhir["base_url"] == sandbox.fhir_url
    assert fhir["token_url"] == sandbox.token_url and fhir["profile_code"] == "CU22"
    secret = sandbox.write_client_config(
        tmp_path / "secret.toml", kinds=("fhir",), fhir_secret_env="SBX_SECRET"
    )
    only = tomllib.loads(secret.read_text())["sources"]
    assert [s["name"] for s in only] == ["sandbox"]
    assert only[0]["client_secret_env"] == "SBX_SECRET" and "client_cert" not in only[0]
    assert only[0]["profile_code"] == "CU23"
    assert json.dumps(only).count(str(sandbox.options.fhir_client_secret)) == 0


# --------------------------------------------------------------------------------------------------------
# with rorclient's own mapping (the default)


@pytest.fixture(scope="module")
def mapped() -> Iterator[Sandbox]:
    sb = Sandbox(
        establishments=6,
        seed=4,
        client_cert="optional",
        fhir_poll_retry_after=0,
        build_index="lazy",
        fhir_export_file_resources=10,
    ).start()
    try:
        yield sb
    finally:
        sb.stop()


def _entity_key(entity: Any) -> tuple[str, str]:
    return entity.kind.value, entity.id


def _plain(entity: Any) -> Any:
    return entity.model_copy(update={"fhir": ()}) if hasattr(entity, "fhir") else entity


def test_an_export_assembles_into_exactly_the_sandbox_truth(mapped: Sandbox, waits: list[float]) -> None:
    from rorclient.fhir import FhirAssembler

    assembler = FhirAssembler()
    with client(mapped, mtls=True) as fhir, fhir.export() as export:
        for resource in export.resources():
            assembler.add(resource)
        assert len(export.files) > 1
    served = {_entity_key(e): _plain(e) for e in assembler.entities()}
    truth = {_entity_key(e): e for offer in mapped._running_app().truth.offers() for e in offer.entities()}
    assert served == truth


def test_the_refresh_graph_query_brings_an_establishment_and_its_offers(mapped: Sandbox) -> None:
    from rorclient.fhir import entities_from_resources
    from rorclient.models import UnitLevel

    establishment_id = mapped.establishment_ids()[1]
    params = [
        ("organization.identifier:above", establishment_id),
        ("_include", "HealthcareService:location"),
        ("_revinclude", "PractitionerRole:service"),
        ("_include", "PractitionerRole:practitioner"),
        ("_include", "HealthcareService:organization"),
        ("_include:iterate", "Organization:partof"),
    ]
    with client(mapped, mtls=True) as fhir:
        resources = list(fhir.search("HealthcareService", params))
    entities = {_entity_key(e): _plain(e) for e in entities_from_resources(resources)}
    offer = mapped.offer(establishment_id)
    assert offer is not None
    elementary = {("unit", u.id) for u in offer.units if u.level is UnitLevel.ELEMENTARY_UNIT}
    assert elementary and elementary <= set(entities)
    assert ("establishment", establishment_id) in entities
    assert ("legal_entity", offer.legal_entities[0].id) in entities
    truth = {_entity_key(e): e for e in offer.entities()}
    assert all(truth[key] == entity for key, entity in entities.items())


def test_a_last_updated_delta_with_the_real_mapping(mapped: Sandbox) -> None:
    mapped.clock.advance(days=2)
    since = mapped.clock.now()
    mutations = mapped.mutate(count=2, kinds=["rename"], seed=11)
    renamed = {f"HealthcareService/hs-{m.unit.replace('/', '-')}" for m in mutations if m.unit}
    assert renamed
    with client(mapped, mtls=True) as fhir:
        window = [("_lastUpdated", f"ge{since.isoformat()}")]
        changed = keyed(list(fhir.search("HealthcareService", window)))
        assert len(list(fhir.search("HealthcareService", []))) > len(changed)
    assert set(changed) == renamed


def test_cli_config_source_option_reaches_the_sandbox(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import rorclient.sandbox as package
    from rorclient import cli

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(package, "serve_forever", lambda **kwargs: calls.append(kwargs))
    config = tmp_path / "c.toml"
    assert cli.main(["sandbox", "--port", "0", "--write-config", str(config), "--config-source", "both"]) == 0
    assert cli.main(["sandbox", "--port", "0", "--write-config", str(config), "--config-source", "fhir"]) == 0
    assert cli.main(["sandbox", "--port", "0"]) == 0
    assert [call["config_kinds"] for call in calls] == [("csd", "fhir"), ("fhir",), ("csd",)]


def test_serve_forever_announces_the_fhir_face_and_writes_both_sources(tmp_path: Path) -> None:
    import threading

    from rorclient.sandbox import serve_forever

    lines: list[str] = []
    stop = threading.Event()
    config = tmp_path / "client.toml"
    thread = threading.Thread(
        target=lambda: serve_forever(
            port=0,
            establishments=2,
            tls_dir=tmp_path / "pki",
            write_config=config,
            config_kinds=("csd", "fhir"),
            announce=lines.append,
            stop=stop,
        )
    )
    thread.start()
    try:
        for _ in range(200):
            if lines and lines[-1].startswith("Press Ctrl-C"):
                break
            stop.wait(0.05)
        text = "\n".join(lines)
        assert "FHIR base:             https://127.0.0.1:" in text and "/ws-diffusion-fhir" in text
        assert "openid-connect/token" in text
        kinds = [source["kind"] for source in tomllib.loads(config.read_text())["sources"]]
        assert kinds == ["csd", "fhir"]
    finally:
        stop.set()
        thread.join()


def test_jobs_never_deleted_are_dropped_beyond_sixteen(sandbox: Sandbox) -> None:
    bearer = {**ROR, "Authorization": f"Bearer {token(sandbox)}"}
    with raw(sandbox) as http:
        locations = [
            http.get(f"{sandbox.fhir_url}/$export", headers=bearer).headers["content-location"]
            for _ in range(17)
        ]
        assert http.get(locations[0], headers=bearer).status_code == 404
        assert http.get(locations[-1], headers=bearer).status_code in (200, 202)


DELTA_QUERIES: dict[str, list[tuple[str, str]]] = {
    "Organization": [("_include:iterate", "Organization:partof")],
    "HealthcareService": [
        ("_include", "HealthcareService:organization"),
        ("_include:iterate", "Organization:partof"),
    ],
    "Location": [("_include", "Location:organization"), ("_include:iterate", "Organization:partof")],
    "PractitionerRole": [
        ("_include", "PractitionerRole:organization"),
        ("_include", "PractitionerRole:service"),
        ("_include:iterate", "HealthcareService:organization"),
        ("_include:iterate", "Organization:partof"),
    ],
    "Practitioner": [("_revinclude", "PractitionerRole:practitioner")],
}


def test_delta_searches_answer_as_a_search_over_all_the_data() -> None:
    from rorclient.sandbox._clock import ROR_ZONE

    sb = Sandbox(
        establishments=8, seed=6, client_cert="optional", clock_ticking=False, build_index="lazy"
    ).start()
    face = sb._running_app().fhir
    found = 0
    try:
        with client(sb) as fhir:
            for number in range(3):
                sb.clock.advance(minutes=5)
                since = sb.clock.now().replace(tzinfo=ROR_ZONE).astimezone(dt.UTC)
                sb.mutate(count=4, seed=number)
                sb.clock.advance(seconds=30)
                for resource_type, includes in DELTA_QUERIES.items():
                    window = ("_lastUpdated", f"ge{since.strftime('%Y-%m-%dT%H:%M:%SZ')}")
                    face.delta_indexes = True
                    partial = keyed(list(fhir.search(resource_type, [window, *includes])))
                    assert next(reversed(face._indexes))[2] is not None  # answered from the changes
                    face.delta_indexes = False
                    whole = keyed(list(fhir.search(resource_type, [window, *includes])))
                    assert partial == whole, (number, resource_type)
                    found += len(partial)
                partial_indexes = [index for key, index in face._indexes.items() if key[2] is not None]
                assert partial_indexes and all(
                    len(i.by_key) < len(face._index(1).by_key) for i in partial_indexes
                )
    finally:
        sb.stop()
    assert found


OFFER_GRAPH = [
    ("_include", "HealthcareService:organization"),
    ("_include:iterate", "Organization:partof"),
    ("_include", "HealthcareService:location"),
    ("_revinclude", "PractitionerRole:service"),
    ("_include", "PractitionerRole:practitioner"),
]


def test_searches_by_identifier_answer_as_a_search_over_all_the_data() -> None:
    sb = Sandbox(establishments=6, seed=8, client_cert="optional", build_index="lazy").start()
    face = sb._running_app().fhir
    try:
        sb.mutate(count=6, kinds=["move", "new_unit", "rename"], seed=3)
        establishments = sb.establishment_ids()
        units = [unit.id for eid in establishments for unit in sb.offer(eid).units]  # type: ignore[union-attr]
        queries: list[tuple[str, list[tuple[str, str]]]] = []
        for eid in establishments[:3]:
            queries.append(("HealthcareService", [("organization.identifier:above", eid), *OFFER_GRAPH]))
            queries.append(("Organization", [("identifier", f"urn:oid:1.2.250.1.71.4.2.2|{eid}")]))
        for unit in units[:: max(1, len(units) // 6)]:
            queries.append(("HealthcareService", [("identifier", unit), *OFFER_GRAPH]))
            queries.append(
                ("Organization", [("identifier", unit), ("_revinclude:iterate", "Organization:partof")])
            )
            queries.append(
                ("Organization", [("identifier", unit), ("_include:iterate", "Organization:partof")])
            )
        queries.append(("Organization", [("identifier", "99/nobody,../x")]))
        nonempty = narrowed = 0
        with client(sb) as fhir:
            for resource_type, params in queries:
                face.delta_indexes = True
                scoped = keyed(list(fhir.search(resource_type, params)))
                narrowed += isinstance(next(reversed(face._indexes))[2], frozenset)
                face.delta_indexes = False
                whole = keyed(list(fhir.search(resource_type, params)))
                assert scoped == whole, (resource_type, params)
                nonempty += bool(scoped)
        assert nonempty >= 8  # the establishment graphs, and each unit as an offer or an organisation
        assert narrowed == len(queries) - 1  # all but the unknown identifiers came from a narrow index
    finally:
        sb.stop()
