"""The stored form of entities: content hashes that stay stable across versions, and the cheap heads the
delta path compares."""

from __future__ import annotations

import gc
import hashlib

import pydantic
import pytest

from rorclient.models import EntityKind
from rorclient.store._sql.rows import _head_fields, decode_head, staged_row
from rorclient.store.base import ChangeKind, StoredEntity, classify_change, content_hash, stored_entity
from tests.strategies import sample_offer

# The digests of the sample offer as stores have written them since the first release. If this changes,
# every row of every existing store would read as "updated" on the next pull or sync.
PINNED = {
    (EntityKind.LEGAL_ENTITY, "1830000001"): "af2d63aa73b1f51886b0de41eac883e9",
    (EntityKind.ESTABLISHMENT, "1830000002"): "165db1a12bb7b51b4f6d579948269c87",
    (EntityKind.UNIT, "93/10000"): "37e0e2905534718931c2c9434b3ed11a",
    (EntityKind.UNIT, "93/12345"): "02d58ecbec26ba248a3240191a7a24c0",
    (EntityKind.ACTIVITY, "93/12345#037"): "ce54cc752168267198eea0cb4fc8c912",
    (EntityKind.EQUIPMENT, "93/12345#046"): "7075c4e07772437a6a02cee9274d327b",
    (EntityKind.PROFESSIONAL, "810000000001"): "a65f3f8c0d7b72a9fd5f87cd34c2f7e4",
}


def test_content_hashes_of_existing_stores_do_not_change() -> None:
    hashes = {(entity.kind, entity.id): content_hash(entity) for entity in sample_offer().entities()}
    assert hashes == PINNED


def test_content_hash_is_the_digest_of_the_stored_json_on_both_write_paths() -> None:
    for entity in sample_offer().entities():
        expected = hashlib.sha256(entity.model_dump_json().encode()).hexdigest()[:32]
        assert content_hash(entity) == expected
        row = staged_row(entity)  # the bulk path
        assert row[-2] == expected
        assert row[-1] == entity.model_dump_json()
        assert stored_entity(entity, source="s", establishment=None).content_hash == expected


def _head_row(**changes: object) -> tuple[object, ...]:
    row: dict[str, object] = {
        "kind": "unit",
        "id": "93/12345",
        "source": "ror",
        "parent": "93/10000",
        "establishment": "1830000002",
        "region": "93",
        "name": "Cardiologie",
        "updated": "2024-03-01T10:00:00",
        "closed": 0,
        "deleted_at": None,
        "content_hash": "02d58ecbec26ba248a3240191a7a24c0",
    }
    row.update(changes)
    return tuple(row.values())


@pytest.mark.parametrize("deleted_at", [None, "2024-04-01T00:00:00+00:00"])
def test_a_decoded_head_is_what_model_construct_builds(deleted_at: str | None) -> None:
    row = _head_row(deleted_at=deleted_at, closed=1)
    head = decode_head(row)
    reference = StoredEntity.model_construct(**_head_fields(row))
    assert head == reference
    assert repr(head) == repr(reference)
    assert head.model_fields_set == reference.model_fields_set
    assert head.deleted is (deleted_at is not None)
    assert head.closed is True
    with pytest.raises(pydantic.ValidationError):
        head.name = "changed"  # type: ignore[misc]  # frozen, like every StoredEntity
    with pytest.raises(AttributeError):
        _ = head.entity  # a head carries no entity


def test_heads_compare_by_content_hash() -> None:
    old = decode_head(_head_row())
    assert classify_change(old, decode_head(_head_row())) is None
    assert classify_change(old, decode_head(_head_row(content_hash="0" * 32))) is ChangeKind.UPDATED
    assert classify_change(old, decode_head(_head_row(parent="93/99999"))) is ChangeKind.MOVED


def test_a_digest_is_remembered_only_while_its_entity_lives(monkeypatch: pytest.MonkeyPatch) -> None:
    from rorclient.store import base

    entities = list(sample_offer().entities())
    unit = next(entity for entity in entities if entity.kind is EntityKind.UNIT)
    digest = content_hash(unit)
    assert content_hash(unit) == digest == PINNED[(unit.kind, unit.id)]
    renamed = unit.model_copy(update={"name": "Renamed"})  # a new (frozen) object: its own digest
    assert content_hash(renamed) not in (digest, None)
    assert content_hash(renamed) == hashlib.sha256(renamed.model_dump_json().encode()).hexdigest()[:32]
    key = id(renamed)
    assert key in base._digests
    del renamed
    gc.collect()
    assert key not in base._digests  # no entry outlives its entity

    monkeypatch.setattr(base, "_DIGESTS_LIMIT", 2)
    base._digests.clear()
    assert [content_hash(entity) for entity in entities] == [PINNED[(e.kind, e.id)] for e in entities]
    assert len(base._digests) <= 2


def test_the_subtree_writes_derive_what_stored_entity_validates() -> None:
    from rorclient.store.base import derived_stored_entity

    for entity in sample_offer().entities():
        validated = stored_entity(entity, source="ror", establishment="1830000002")
        derived = derived_stored_entity(entity, source="ror", establishment="1830000002")
        assert derived == validated
        assert repr(derived) == repr(validated)
        assert derived.model_fields_set == validated.model_fields_set
        assert derived.model_dump() == validated.model_dump()
        assert derived.entity is entity
