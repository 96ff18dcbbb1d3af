"""The synthetic dataset: deterministic, schema-valid, consistent, faithful to the ROR business rules."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import random
import re
import zipfile
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from rorclient.codes import Oid
from rorclient.csd.reader import read_offer
from rorclient.csd.writer import csd_bytes
from rorclient.errors import ConfigError
from rorclient.geography import region_of_id
from rorclient.models import EntityKind, Offer, Unit, UnitLevel
from rorclient.sandbox import _vocab as vocab
from rorclient.sandbox.dataset import (
    REFERENCE_TIME,
    establishments_for_size,
    generate_dataset,
    main,
    write_extraction,
)
from rorclient.sandbox.mutations import MUTATIONS, add_elementary_unit, delete_unit, mutate
from tests.conftest import NOMENCLATURES

STRUCTURE_ID = re.compile(r"1(?:\d\d|2[AB])\d{7}|197[0-9]\d{6}")


@pytest.fixture(scope="module")
def offers() -> list[Offer]:
    return list(generate_dataset(seed=7, establishments=400))


@pytest.fixture(scope="module")
def large_offers() -> list[Offer]:
    return list(generate_dataset(seed=11, establishments=1500))


# --------------------------------------------------------------------------------------------------
# Determinism, scale, files
# --------------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    for compress, name in ((None, "x.xml"), ("gzip", "x.xml.gz"), ("zip", "x.zip")):
        (tmp_path / "a").mkdir(exist_ok=True)
        (tmp_path / "b").mkdir(exist_ok=True)
        first, second = tmp_path / "a" / name, tmp_path / "b" / name
        write_extraction(first, seed=3, establishments=15, compress=compress)
        write_extraction(second, seed=3, establishments=15, compress=compress)
        assert first.read_bytes() == second.read_bytes(), compress


def test_different_seeds_give_different_data() -> None:
    assert list(generate_dataset(1, 5)) != list(generate_dataset(2, 5))


def test_smaller_dataset_is_a_prefix_of_a_larger_one() -> None:
    assert list(generate_dataset(5, 12)) == list(islice(generate_dataset(5, 60), 12))


def test_generation_is_lazy() -> None:
    stream = generate_dataset(seed=1, establishments=100_000)
    first = next(stream)
    assert first.establishments
    stream.close()


def test_establishment_count_is_exact_and_bounded(offers: list[Offer]) -> None:
    assert len(offers) == 400
    assert all(len(offer.establishments) == 1 and len(offer.legal_entities) == 1 for offer in offers)
    assert list(generate_dataset(1, 0)) == []
    with pytest.raises(ConfigError):
        list(generate_dataset(1, -1))


def test_compressed_extractions_hold_the_plain_document(tmp_path: Path) -> None:
    plain, gz, zipped = tmp_path / "e.xml", tmp_path / "e.xml.gz", tmp_path / "e.zip"
    stats = write_extraction(plain, seed=4, establishments=10)
    write_extraction(gz, seed=4, establishments=10, compress="gzip")
    write_extraction(zipped, seed=4, establishments=10, compress="zip")
    assert stats.bytes_written == plain.stat().st_size
    assert gzip.decompress(gz.read_bytes()) == plain.read_bytes()
    with zipfile.ZipFile(zipped) as archive:
        assert archive.namelist() == ["e.xml"]
        assert archive.read("e.xml") == plain.read_bytes()


def test_unknown_compression_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bz2"):
        write_extraction(tmp_path / "x", seed=1, establishments=1, compress="bz2")  # type: ignore[arg-type]


def test_size_targeting_scales_with_the_target() -> None:
    small = establishments_for_size(2_000_000, seed=1, sample=40)
    large = establishments_for_size(20_000_000, seed=1, sample=40)
    assert 20 < small < 1000
    assert 9 * small <= large <= 11 * small


def test_command_line_writes_an_extraction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "cli.xml.gz"
    assert main([str(target), "--establishments", "5", "--seed", "2"]) == 0
    assert gzip.decompress(target.read_bytes()).startswith(b"<?xml")
    assert "5 establishments" in capsys.readouterr().err


def test_generated_extractions_validate_against_the_official_xsd(csd_schema: Any) -> None:
    for seed in (0, 1, 2):
        data = csd_bytes(generate_dataset(seed, 25))
        errors = list(csd_schema.iter_errors(io.BytesIO(data)))
        assert not errors, (seed, errors[0])


def test_a_shared_legal_entity_is_written_once(offers: list[Offer]) -> None:
    shared = Counter(offer.legal_entities[0].id for offer in offers)
    assert max(shared.values()) >= 2, "some legal entities run several establishments"
    data = csd_bytes(offers[:60])
    expected = len({o.legal_entities[0].id for o in offers[:60]}) + 60
    directory = etree.fromstring(data).find("{urn:ihe:iti:csd:2013}organizationDirectory")
    assert len(directory) == expected


# --------------------------------------------------------------------------------------------------
# Consistency and business rules
# --------------------------------------------------------------------------------------------------


def _units_by_id(offer: Offer) -> dict[str, Unit]:
    return {unit.id: unit for unit in offer.units}


def test_identifiers_are_unique_finess_like_and_regional(offers: list[Offer]) -> None:
    seen: set[tuple[EntityKind, str]] = set()
    for offer in offers:
        establishment = offer.establishments[0]
        assert STRUCTURE_ID.fullmatch(establishment.id), establishment.id
        assert STRUCTURE_ID.fullmatch(offer.legal_entities[0].id)
        region = region_of_id(EntityKind.ESTABLISHMENT, establishment.id)
        assert region is not None
        for entity in offer.entities():
            if entity.kind is not EntityKind.LEGAL_ENTITY:
                assert (entity.kind, entity.id) not in seen, entity.id
                seen.add((entity.kind, entity.id))
        for unit in offer.units:
            assert re.fullmatch(r"\d\d/\d+", unit.id)
            assert region_of_id(EntityKind.UNIT, unit.id) == region
            assert unit.other_ids[0].value == unit.id


def test_hierarchy_is_consistent(offers: list[Offer]) -> None:
    for offer in offers:
        establishment = offer.establishments[0]
        units = _units_by_id(offer)
        assert establishment.legal_entity_id == offer.legal_entities[0].id
        position = {unit.id: i for i, unit in enumerate(offer.units)}
        for unit in offer.units:
            assert unit.establishment_id == establishment.id
            if unit.parent_unit_id is not None:
                parent = units[unit.parent_unit_id]
                assert position[parent.id] < position[unit.id], "parents come first"
                assert parent.level != UnitLevel.ELEMENTARY_UNIT
                assert int(parent.types[0].code) < int(unit.types[0].code)
        parents = {unit.parent_unit_id for unit in offer.units}
        for unit in offer.units:
            if unit.level is UnitLevel.ELEMENTARY_UNIT:
                assert unit.id not in parents, "UEs are leaves"
            else:
                assert unit.id in parents, "every pôle, service and UF holds units"
        for owned in (*offer.activities, *offer.equipment):
            assert units[owned.unit_id].level is UnitLevel.ELEMENTARY_UNIT
        for professional in offer.professionals:
            assert professional.establishment_ids == (establishment.id,)
            assert professional.unit_ids
            assert all(units[unit_id].activity_fields[0].code == "05" for unit_id in professional.unit_ids)
    assert any(offer.professionals for offer in offers) and any(offer.activities for offer in offers)


def test_elementary_units_have_one_field_and_one_care_mode(offers: list[Offer]) -> None:
    care_modes = {code.code for codes in vocab.CARE_MODES.values() for code in codes} | {
        vocab.HAD_CARE_MODE.code
    }
    for offer in offers:
        for unit in offer.units:
            if unit.level is UnitLevel.ELEMENTARY_UNIT:  # RG_EXP_010/011
                assert len(unit.activity_fields) == 1
                assert unit.care_mode.code in care_modes
                assert unit.care_mode.coding_scheme == Oid.CARE_MODE
            else:
                assert unit.care_mode.code == "null"


def test_activity_fields_of_a_unit_are_on_its_ancestors(offers: list[Offer]) -> None:
    for offer in offers:  # RG_ALIM_006
        units = _units_by_id(offer)
        for unit in offer.units:
            fields = {field.code for field in unit.activity_fields}
            parent_id = unit.parent_unit_id
            while parent_id is not None:
                parent = units[parent_id]
                assert fields <= {field.code for field in parent.activity_fields}
                parent_id = parent.parent_unit_id


def test_every_open_establishment_has_an_elementary_unit(offers: list[Offer]) -> None:
    for offer in offers:  # RG_EXP_001
        if offer.establishments[0].closing_date is None:
            assert any(unit.level is UnitLevel.ELEMENTARY_UNIT for unit in offer.units)


def test_records_are_ordered_and_never_after_the_reference_time(offers: list[Offer]) -> None:
    unmodified = contacts = 0
    for offer in offers:
        for entity in offer.entities():
            record = entity.record
            assert record.created <= record.updated <= REFERENCE_TIME
            unmodified += record.created == record.updated  # RG_EXP_023
        for unit in offer.units:
            for contact in unit.contacts:
                assert contact.record.updated <= unit.record.updated
                contacts += 1
            assert unit.patients.record.updated <= unit.record.updated
    assert unmodified > 0 and contacts > 100


def test_contacts_follow_the_confidentiality_rules(offers: list[Offer]) -> None:
    checked = Counter[str]()
    for offer in offers:
        holders = [*offer.establishments, *offer.units]
        for holder in holders:
            for contact in holder.contacts:
                level = int(contact.confidentiality.code)
                telecoms = [t for t in contact.telecoms if t.confidentiality]
                assert all(int(t.confidentiality.code) >= level for t in telecoms)
                assert (contact.nature is None) != (contact.function is None)  # RG_EXP_040/041
                assert (contact.name is not None) == (contact.function is not None)
                checked["contacts"] += 1
                checked["telecoms"] += len(telecoms)
    assert checked["contacts"] > 100 and checked["telecoms"] > 100  # the rules were tried, not skipped


def test_contacts_of_sensitive_units_are_very_restricted(large_offers: list[Offer]) -> None:
    """RG_EXP_039 on a dataset large enough to hold sensitive units with contacts (about 1 in 1,000)."""
    sensitive = [unit for offer in large_offers for unit in offer.units if unit.sensitive and unit.contacts]
    assert len(sensitive) >= 5
    assert all(contact.confidentiality.code == "3" for unit in sensitive for contact in unit.contacts)


def test_the_dataset_has_closures_ambulatory_professionals_and_every_activity_field(
    large_offers: list[Offer],
) -> None:
    offers = large_offers
    assert any(offer.establishments[0].closing_date for offer in offers)
    units = [unit for offer in offers for unit in offer.units]
    assert any(unit.final_closing_date for unit in units)
    assert any(unit.location and unit.location.status and unit.location.status.code == "2" for unit in units)
    assert any(offer.professionals for offer in offers)
    fields = Counter(
        unit.activity_fields[0].code for unit in units if unit.level is UnitLevel.ELEMENTARY_UNIT
    )
    assert set(fields) == set(vocab.ACTIVITY_FIELDS)
    levels = Counter(unit.level for unit in units)
    assert set(levels) == {
        UnitLevel.POLE,
        UnitLevel.SERVICE,
        UnitLevel.FUNCTIONAL_UNIT,
        UnitLevel.ELEMENTARY_UNIT,
    }
    assert 3.5 < len(units) / len(offers) < 7, "about five units per establishment, as in the national ROR"


# --------------------------------------------------------------------------------------------------
# The embedded code lists are real NOS codes
# --------------------------------------------------------------------------------------------------


def _nos_labels(prefix: str) -> dict[str, str]:
    with zipfile.ZipFile(NOMENCLATURES / "2023-06-14_NOS-Fichiers_Publics.zip") as archive:
        name = next(n for n in archive.namelist() if n.startswith(prefix))
        lines = archive.read(name).decode("latin-1").splitlines()
    rows = (line.split(";") for line in lines[3:])
    return {row[1]: row[2] for row in rows if len(row) > 2}


@pytest.mark.parametrize(
    ("table", "codes"),
    [
        ("TRE_R211-", {c.code: c.label for codes in vocab.ACTIVITIES.values() for c in codes}),
        ("TRE_R212-", {c.code: c.label for codes in vocab.EQUIPMENT.values() for c in codes}),
        ("TRE_R213-", {c.code: c.label for codes in vocab.CARE_MODES.values() for c in codes}),
        ("TRE_R227-", vocab.ACTIVITY_FIELDS),
        ("TRE_R66-", vocab.ESTABLISHMENT_CATEGORIES),
        ("TRE_R72-", {code: label for code, (label, _) in vocab.LEGAL_STATUSES.items()}),
        ("TRE_R69-", vocab.LEGAL_STATUS_GROUPS),
        ("TRE_G15-", vocab.PROFESSIONS),
        ("TRE_R13-", {city.insee: city.name for city in vocab.CITIES}),
    ],
)
def test_vocabulary_codes_and_labels_come_from_the_nos_tables(table: str, codes: dict[str, str]) -> None:
    labels = _nos_labels(table)
    for code, label in codes.items():
        assert code in labels, (table, code)
        assert labels[code].startswith(label) or label in labels[code], (table, code, label, labels[code])


# --------------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------------

LATER = REFERENCE_TIME + dt.timedelta(days=3)


def _hospital(offers: list[Offer]) -> Offer:
    """An open establishment with pôles, a contact on a unit and no closed unit."""
    for offer in offers:
        units = offer.units
        if (
            offer.establishments[0].closing_date is None
            and any(u.level is UnitLevel.POLE for u in units)
            and any(u.contacts for u in units)
            and not any(u.closed for u in units)
        ):
            return offer
    raise AssertionError("no hospital in the fixture dataset")


@pytest.mark.parametrize("kind", MUTATIONS)
def test_each_mutation_changes_the_offer_and_refreshes_records(
    offers: list[Offer], kind: str, csd_schema: Any
) -> None:
    before = _hospital(offers)
    if kind == "reopening":
        before = mutate(before, "closure", random.Random(1), LATER - dt.timedelta(days=1))
    after = mutate(before, kind, random.Random(1), LATER)
    assert after != before
    old = {(e.kind, e.id): e for e in before.entities()}
    new = {(e.kind, e.id): e for e in after.entities()}
    changed = [key for key in old.keys() & new.keys() if old[key] != new[key]]
    if kind == "new_unit":
        assert new.keys() - old.keys(), "a new unit (and what it owns) appears"
    else:
        assert changed
    for key in changed:  # RG_EXP_024/025
        assert new[key].record.updated == LATER, key
    for key in new.keys() - old.keys():  # RG_EXP_023
        assert new[key].record.created == new[key].record.updated == LATER
    errors = list(csd_schema.iter_errors(io.BytesIO(csd_bytes(after))))
    assert not errors, errors[0]


def test_closure_then_reopening_restores_an_open_unit(offers: list[Offer]) -> None:
    before = _hospital(offers)
    closed = mutate(before, "closure", random.Random(4), LATER)
    (unit,) = [u for u in closed.units if u.closed]
    assert unit.final_closing_date == LATER.date()
    reopened = mutate(closed, "reopening", random.Random(4), LATER + dt.timedelta(days=1))
    assert not any(u.closed for u in reopened.units)


def test_deleting_a_unit_removes_its_subtree_and_refreshes_its_parent(offers: list[Offer]) -> None:
    before = _hospital(offers)
    pole = next(u for u in before.units if u.level is UnitLevel.POLE)
    after = delete_unit(before, pole.id, LATER)
    remaining = {u.id for u in after.units}
    assert pole.id not in remaining
    assert all(u.parent_unit_id is None or u.parent_unit_id in remaining for u in after.units)
    assert all(a.unit_id in remaining for a in after.activities)
    assert after.establishments[0].record.updated == LATER  # the pôle hung from the establishment


def test_new_unit_gets_a_fresh_identifier_and_the_activities_of_its_model(offers: list[Offer]) -> None:
    before = _hospital(offers)
    after = add_elementary_unit(before, random.Random(2), LATER)
    (new,) = [u for u in after.units if u.id not in {x.id for x in before.units}]
    assert new.level is UnitLevel.ELEMENTARY_UNIT
    assert region_of_id(EntityKind.UNIT, new.id) == region_of_id(EntityKind.UNIT, before.units[0].id)
    assert [a.unit_id for a in after.activities].count(new.id) >= 1


def test_impossible_or_unknown_mutation_is_a_config_error(offers: list[Offer]) -> None:
    with pytest.raises(ConfigError, match="reopening"):
        mutate(_hospital(offers), "reopening", random.Random(1), LATER)
    with pytest.raises(ConfigError, match="teleport"):
        mutate(_hospital(offers), "teleport", random.Random(1), LATER)


def test_some_units_carry_reconciliation_comments_that_survive_the_csd_round_trip(
    offers: list[Offer],
) -> None:
    units = [unit for offer in offers for unit in offer.units]
    commented = [unit for unit in units if unit.record.extras]
    assert 0 < len(commented) < len(units) / 10  # about one in 25
    assert all("<csd:comments>" in unit.record.extras[0].xml for unit in commented)
    again = read_offer(csd_bytes(offers))
    assert {u.id: u.record for u in again.units if u.record.extras} == {u.id: u.record for u in commented}


def test_a_mutation_keeps_the_comments_of_a_record(offers: list[Offer]) -> None:
    offer = next(o for o in offers if any(u.record.extras for u in o.units))
    unit = next(u for u in offer.units if u.record.extras)
    renamed = next(
        m
        for m in (mutate(offer, "rename", random.Random(seed), REFERENCE_TIME) for seed in range(500))
        if next(u for u in m.units if u.id == unit.id).name != unit.name
    )
    after = next(u for u in renamed.units if u.id == unit.id)
    assert after.record.updated == REFERENCE_TIME and after.record.extras == unit.record.extras
