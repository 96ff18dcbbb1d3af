"""The store conformance suite: the behaviour every :class:`~rorclient.store.Store` must have.

Run it against your store by subclassing :class:`StoreConformance` in a test module and saying how to
make a fresh, empty store::

    import pytest

    pytest.register_assert_rewrite("rorclient.testing.store_conformance")  # readable assertion failures

    from rorclient.testing.store_conformance import StoreConformance


    class TestMyStore(StoreConformance):
        def make_store(self, tmp_path):
            return MyStore(tmp_path / "db")

(or override the ``store`` fixture itself when the store needs other fixtures). The suite needs only
rorclient and pytest: its test data comes from the small factories below (:func:`site`, :func:`unit`...),
which are also handy in your own tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from rorclient._lock import lock_file_path, writer_lock
from rorclient.errors import DataError, StoreError
from rorclient.models import (
    Activity,
    Age,
    CodedValue,
    Entity,
    EntityKind,
    Equipment,
    Establishment,
    LegalEntity,
    Offer,
    PatientsType,
    PersonName,
    Professional,
    RecordMeta,
    Unit,
)
from rorclient.store.base import (
    BreakerLatch,
    BulkLoad,
    ChangeKind,
    ChangeSet,
    EntityQuery,
    PendingEstablishment,
    RunReport,
    Store,
    StoredEntity,
    StoreTransaction,
    SyncState,
    content_hash,
)
from rorclient.store.capabilities import LocalDatabase, LocksWriters, StagesRows, staged_row

__all__ = [
    "EG1",
    "SOURCE",
    "T0",
    "StoreConformance",
    "activity",
    "apply_site",
    "equipment",
    "establishment",
    "legal_entity",
    "professional",
    "record",
    "site",
    "unit",
]

# --------------------------------------------------------------------------------------------------
# Factories: small, valid entities with business ids whose region rorclient can derive
# --------------------------------------------------------------------------------------------------

T0 = dt.datetime(2024, 3, 1, 8, 30)
"""The ``record.updated`` of every factory entity unless told otherwise (naive, as the ROR sends it)."""

SOURCE = "ror-test"
OTHER_SOURCE = "ror-other"
LEGAL = "1750000008"
"""A legal entity in Paris (département 75, region 11)."""
EG1 = "1750000016"
EG2 = "1750000024"
EG_SOUTH = "1130000001"
"""An establishment in the Bouches-du-Rhône (département 13, region 93)."""


def record(updated: dt.datetime = T0) -> RecordMeta:
    return RecordMeta(created=T0, updated=updated)


def legal_entity(
    id: str = LEGAL, *, name: str = "Groupe hospitalier Test", updated: dt.datetime = T0
) -> LegalEntity:
    return LegalEntity(id=id, name=name, record=record(updated))


def establishment(
    id: str = EG1,
    *,
    legal_entity_id: str = LEGAL,
    name: str | None = None,
    closing_date: dt.date | None = None,
    updated: dt.datetime = T0,
) -> Establishment:
    return Establishment(
        id=id,
        legal_entity_id=legal_entity_id,
        name=name or f"Hôpital {id}",
        closing_date=closing_date,
        record=record(updated),
    )


def unit(
    id: str,
    establishment_id: str = EG1,
    *,
    parent_unit_id: str | None = None,
    name: str | None = None,
    final_closing_date: dt.date | None = None,
    updated: dt.datetime = T0,
) -> Unit:
    return Unit(
        id=id,
        name=name or f"Unité {id}",
        establishment_id=establishment_id,
        parent_unit_id=parent_unit_id,
        care_mode=CodedValue(code="01", coding_scheme="1.2.250.1.213.3.3.13"),
        patients=PatientsType(age_min=Age(value=0), age_max=Age(value=120), record=record(updated)),
        final_closing_date=final_closing_date,
        record=record(updated),
    )


def activity(
    unit_id: str, code: str = "100", *, display: str | None = None, updated: dt.datetime = T0
) -> Activity:
    return Activity(
        unit_id=unit_id,
        code=CodedValue(code=code, coding_scheme="1.2.250.1.213.3.3.12", display=display),
        record=record(updated),
    )


def equipment(unit_id: str, code: str = "E10", *, count: int = 1) -> Equipment:
    return Equipment(
        unit_id=unit_id,
        code=CodedValue(code=code, coding_scheme="1.2.250.1.213.3.3.10"),
        count=count,
        record=record(),
    )


def professional(
    id: str,
    *,
    establishment_ids: tuple[str, ...] = (),
    unit_ids: tuple[str, ...] = (),
    surname: str = "Martin",
) -> Professional:
    return Professional(
        id=id,
        person=PersonName(common_names=(surname,), forename="Claire", surname=surname),
        establishment_ids=establishment_ids,
        unit_ids=unit_ids,
        record=record(),
    )


def site(
    establishment_id: str = EG1,
    *units: Unit,
    codes: Iterable[str] = ("100",),
    equipment_codes: Iterable[str] = (),
    extra: Iterable[Entity] = (),
    legal: LegalEntity | None = None,
    establishment_entity: Establishment | None = None,
) -> Offer:
    """The offer of one establishment as a Lecture returns it: its legal entity, the establishment, the
    given units, each with one activity per code in ``codes`` and one equipment per ``equipment_codes``."""
    codes, equipment_codes = tuple(codes), tuple(equipment_codes)
    entities: list[Entity] = [
        legal or legal_entity(),
        establishment_entity or establishment(establishment_id),
    ]
    entities += units
    for each in units:
        entities += [activity(each.id, code) for code in codes]
        entities += [equipment(each.id, code) for code in equipment_codes]
    entities += extra
    return Offer.of(entities)


def apply_site(
    store: Store,
    offer: Offer,
    establishment_id: str = EG1,
    *,
    source: str = SOURCE,
    keep: Iterable[str] = (),
) -> ChangeSet:
    """``replace_establishment`` in a transaction of its own."""
    with store.transaction() as tx:
        return tx.replace_establishment(
            offer, source=source, establishment_id=establishment_id, keep=set(keep)
        )


def changes_of(changes: ChangeSet) -> dict[tuple[str, str], str]:
    """``{(kind, id): change}``, for readable assertions."""
    return {(change.kind.value, change.id): change.change.value for change in changes.changes}


def _counts(**nonzero: int) -> dict[ChangeKind, int]:
    counts = dict.fromkeys(ChangeKind, 0)
    for name, value in nonzero.items():
        counts[ChangeKind(name)] = value
    return counts


def _live(store: Store, kind: EntityKind, id: str) -> StoredEntity:
    stored = store.get(kind, id)
    assert stored is not None, f"{kind.value} {id} should be live"
    return stored


def _ids(store: Store, query: EntityQuery) -> list[str]:
    return [item.id for item in store.find(query).items]


U1, U2, U3 = "11/1001", "11/1002", "11/1003"
UNIT = EntityKind.UNIT
ACTIVITY = EntityKind.ACTIVITY


# --------------------------------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------------------------------


class StoreConformance:
    """Subclass it (as ``TestSomething``) and implement :meth:`make_store`, or override ``store``."""

    def make_store(self, tmp_path: Path) -> Store:
        """A fresh, empty store; ``tmp_path`` is a private directory for its files."""
        raise NotImplementedError(
            "subclasses of StoreConformance implement make_store() or the store fixture"
        )

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = self.make_store(tmp_path)
        try:
            yield store
        finally:
            store.close()

    # ---- the contract ----------------------------------------------------------------------------
    def test_implements_the_protocols(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert isinstance(store.url, str)
        with store.transaction() as tx:
            assert isinstance(tx, StoreTransaction)
        with store.bulk_load(source=SOURCE) as load:
            assert isinstance(load, BulkLoad)
            load.abort()

    def test_a_new_store_is_empty(self, store: Store) -> None:
        assert store.get(UNIT, U1) is None
        page = store.find(EntityQuery())
        assert (page.items, page.total, page.next_offset) == ((), 0, None)
        assert list(store.iter_entities()) == []
        stats = store.stats()
        assert (stats.by_kind, stats.by_source, stats.deleted, stats.last_change_seq) == ({}, {}, 0, 0)
        assert store.changes() == []
        assert store.sync_states() == []
        assert store.sync_state(SOURCE) is None
        assert store.pending() == []
        assert store.runs() == []

    # ---- replace_establishment: upserts ----------------------------------------------------------
    def test_replace_establishment_creates_the_whole_offer(self, store: Store) -> None:
        offer = site(EG1, unit(U1), unit(U2, parent_unit_id=U1), equipment_codes=("E10",))
        result = apply_site(store, offer)
        assert changes_of(result) == {
            ("legal_entity", LEGAL): "created",
            ("establishment", EG1): "created",
            ("unit", U1): "created",
            ("unit", U2): "created",
            ("activity", f"{U1}#100"): "created",
            ("activity", f"{U2}#100"): "created",
            ("equipment", f"{U1}#E10"): "created",
            ("equipment", f"{U2}#E10"): "created",
        }
        assert result.counts()[ChangeKind.CREATED] == 8
        for entity in offer.entities():
            stored = store.get(entity.kind, entity.id)
            assert stored is not None, entity.id
            assert stored.entity == entity
            assert stored.source == SOURCE
            assert stored.content_hash == content_hash(entity)
            assert stored.name == entity.name
            assert stored.updated == entity.record.updated
            assert not stored.deleted
            assert stored.deleted_at is None

    def test_stored_entities_carry_their_owner_and_region(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2, parent_unit_id=U1)))
        legal = store.get(EntityKind.LEGAL_ENTITY, LEGAL)
        eg = store.get(EntityKind.ESTABLISHMENT, EG1)
        top = store.get(UNIT, U1)
        child = store.get(UNIT, U2)
        act = store.get(ACTIVITY, f"{U2}#100")
        assert legal is not None
        assert (legal.parent, legal.establishment, legal.region) == (None, None, "11")
        assert eg is not None
        assert (eg.parent, eg.establishment, eg.region) == (LEGAL, EG1, "11")
        assert top is not None
        assert (top.parent, top.establishment, top.region) == (EG1, EG1, "11")
        assert child is not None
        assert (child.parent, child.establishment) == (U1, EG1)
        assert act is not None
        assert (act.parent, act.establishment, act.region) == (U2, EG1, "11")

    def test_professionals_belong_to_the_establishment_replaced(self, store: Store) -> None:
        doctor = professional("810000000001", establishment_ids=(EG1,), unit_ids=(U1,))
        apply_site(store, site(EG1, unit(U1), extra=[doctor]))
        stored = store.get(EntityKind.PROFESSIONAL, "810000000001")
        assert stored is not None
        assert (stored.parent, stored.establishment, stored.name) == (U1, EG1, "Claire Martin")

    def test_replacing_the_same_offer_again_changes_nothing(self, store: Store) -> None:
        offer = site(EG1, unit(U1), unit(U2), equipment_codes=("E10",))
        apply_site(store, offer)
        last_seq = store.stats().last_change_seq
        again = apply_site(store, offer)
        assert len(again) == 0
        assert again.changes == ()
        assert store.changes(since=last_seq) == []
        assert store.stats().last_change_seq == last_seq

    def test_an_edited_entity_is_updated_and_nothing_else(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2)))
        renamed = unit(U2, name="Cardiologie", updated=T0 + dt.timedelta(days=1))
        result = apply_site(store, site(EG1, unit(U1), renamed))
        assert changes_of(result) == {("unit", U2): "updated"}
        stored = store.get(UNIT, U2)
        assert stored is not None
        assert stored.name == "Cardiologie"
        assert stored.entity == renamed

    def test_the_legal_entity_is_upserted_but_never_deleted(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1)))
        renamed = legal_entity(name="GHT Nouveau nom")
        result = apply_site(store, site(EG1, unit(U1), legal=renamed))
        assert changes_of(result) == {("legal_entity", LEGAL): "updated"}
        without_legal = Offer(
            establishments=(establishment(EG1),), units=(unit(U1),), activities=(activity(U1),)
        )
        assert len(apply_site(store, without_legal)) == 0
        assert store.get(EntityKind.LEGAL_ENTITY, LEGAL) is not None

    def test_an_entity_given_twice_in_one_offer_is_merged_if_identical(self, store: Store) -> None:
        offer = Offer(
            legal_entities=(legal_entity(), legal_entity()),
            establishments=(establishment(EG1),),
            units=(unit(U1), unit(U1)),
        )
        assert changes_of(apply_site(store, offer)) == {
            ("legal_entity", LEGAL): "created",
            ("establishment", EG1): "created",
            ("unit", U1): "created",
        }

    def test_an_entity_given_twice_with_different_content_is_a_data_error(self, store: Store) -> None:
        offer = Offer(
            legal_entities=(legal_entity(),),
            establishments=(establishment(EG1),),
            units=(unit(U1), unit(U1, name="Doublon")),
        )
        with pytest.raises(DataError, match="11/1001"):
            apply_site(store, offer)
        assert store.get(UNIT, U1) is None
        assert store.changes() == []

    # ---- replace_establishment: tombstones -------------------------------------------------------
    def test_entities_absent_from_the_offer_become_tombstones(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2), codes=("100", "200")))
        result = apply_site(store, Offer.of([*site(EG1, unit(U1)).entities(), activity(U1, "200")]))
        assert changes_of(result) == {
            ("unit", U2): "deleted",
            ("activity", f"{U2}#100"): "deleted",
            ("activity", f"{U2}#200"): "deleted",
        }
        assert store.get(UNIT, U2) is None
        tombstone = store.get(UNIT, U2, include_deleted=True)
        assert tombstone is not None
        assert tombstone.deleted
        assert tombstone.deleted_at is not None
        assert tombstone.deleted_at.tzinfo is not None
        assert tombstone.entity == unit(U2), "a tombstone keeps the last known entity"
        assert _ids(store, EntityQuery(kind=UNIT)) == [U1]
        assert _ids(store, EntityQuery(kind=UNIT, include_deleted=True)) == [U1, U2]
        assert len(apply_site(store, site(EG1, unit(U1), codes=("100", "200")))) == 0, "tombstones stay put"

    def test_a_tombstoned_entity_that_comes_back_is_created_again(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2)))
        apply_site(store, site(EG1, unit(U1)))
        result = apply_site(store, site(EG1, unit(U1), unit(U2)))
        assert changes_of(result) == {("unit", U2): "created", ("activity", f"{U2}#100"): "created"}
        stored = store.get(UNIT, U2)
        assert stored is not None
        assert not stored.deleted
        assert stored.deleted_at is None

    def test_an_establishment_missing_from_its_own_offer_is_tombstoned(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1)))
        result = apply_site(store, Offer(legal_entities=(legal_entity(),)))
        assert changes_of(result) == {
            ("establishment", EG1): "deleted",
            ("unit", U1): "deleted",
            ("activity", f"{U1}#100"): "deleted",
        }

    def test_replace_only_tombstones_rows_of_its_own_source(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2)), source=OTHER_SOURCE)
        apply_site(store, site(EG1, unit(U1)), source=SOURCE)
        other = store.get(UNIT, U2)
        assert other is not None
        assert other.source == OTHER_SOURCE

    def test_a_row_taken_over_by_another_source_is_updated(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1)), source=OTHER_SOURCE)
        result = apply_site(store, site(EG1, unit(U1)), source=SOURCE)
        assert set(changes_of(result).values()) == {"updated"}
        stored = store.get(UNIT, U1)
        assert stored is not None
        assert stored.source == SOURCE

    # ---- closures and reopenings -----------------------------------------------------------------
    def test_closures_and_reopenings_are_reported(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2)))
        closed_unit = unit(U2, final_closing_date=dt.date(2024, 6, 30))
        closed_site = establishment(EG1, closing_date=dt.date(2024, 7, 1))
        result = apply_site(store, site(EG1, unit(U1), closed_unit, establishment_entity=closed_site))
        assert changes_of(result) == {("establishment", EG1): "closed", ("unit", U2): "closed"}
        stored = store.get(UNIT, U2)
        assert stored is not None
        assert stored.closed
        assert _ids(store, EntityQuery(closed=True)) == [EG1, U2]

        reopened = apply_site(store, site(EG1, unit(U1), unit(U2)))
        assert changes_of(reopened) == {("establishment", EG1): "reopened", ("unit", U2): "reopened"}
        assert _ids(store, EntityQuery(closed=True)) == []

    # ---- moves -----------------------------------------------------------------------------------
    def test_a_unit_read_under_its_new_establishment_first_is_moved(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2)), EG1)
        apply_site(store, site(EG2), EG2)
        moved = apply_site(store, site(EG2, unit(U2, EG2)), EG2)
        assert changes_of(moved) == {("unit", U2): "moved", ("activity", f"{U2}#100"): "moved"}
        act = store.get(ACTIVITY, f"{U2}#100")
        assert act is not None
        assert act.establishment == EG2
        # The old establishment is read next: the unit it no longer lists now lives elsewhere.
        assert len(apply_site(store, site(EG1, unit(U1)), EG1)) == 0
        stored = store.get(UNIT, U2)
        assert stored is not None
        assert stored.establishment == EG2
        assert not stored.deleted

    def test_a_unit_kept_while_its_old_establishment_is_read_first_is_moved_later(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2), unit(U3, parent_unit_id=U2)), EG1)
        apply_site(store, site(EG2), EG2)
        left = apply_site(store, site(EG1, unit(U1)), EG1, keep=[U2])
        assert changes_of(left) == {}, "the kept unit, its sub-units and their activities are left alone"
        kept = store.get(UNIT, U2)
        assert kept is not None
        assert kept.establishment == EG1
        moved = apply_site(store, site(EG2, unit(U2, EG2), unit(U3, EG2, parent_unit_id=U2)), EG2)
        assert changes_of(moved) == {
            ("unit", U2): "moved",
            ("unit", U3): "moved",
            ("activity", f"{U2}#100"): "moved",
            ("activity", f"{U3}#100"): "moved",
        }
        assert [c.change for c in store.changes() if c.id == U2] == [ChangeKind.CREATED, ChangeKind.MOVED]

    def test_without_keep_a_unit_leaving_first_is_deleted_then_created(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2)), EG1)
        left = apply_site(store, site(EG1, unit(U1)), EG1)
        assert changes_of(left)[("unit", U2)] == "deleted"
        arrived = apply_site(store, site(EG2, unit(U2, EG2)), EG2)
        assert changes_of(arrived)[("unit", U2)] == "created"

    def test_activities_a_moved_unit_no_longer_offers_are_tombstoned(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2), codes=("100", "200")), EG1)
        moved = apply_site(store, site(EG2, unit(U2, EG2), codes=("100",)), EG2)
        assert changes_of(moved) == {
            ("establishment", EG2): "created",
            ("unit", U2): "moved",
            ("activity", f"{U2}#100"): "moved",
            ("activity", f"{U2}#200"): "deleted",
        }

    # ---- replace_unit and delete_establishment ---------------------------------------------------
    def test_replace_unit_replaces_exactly_that_subtree(self, store: Store) -> None:
        offer = site(EG1, unit(U1), unit(U2, parent_unit_id=U1), unit(U3), codes=("100", "200"))
        apply_site(store, offer)
        unit_offer = Offer.of(
            [legal_entity(), establishment(EG1), unit(U1, name="Pôle renommé"), activity(U1, "100")]
        )
        with store.transaction() as tx:
            result = tx.replace_unit(unit_offer, source=SOURCE, unit_id=U1)
        assert changes_of(result) == {
            ("unit", U1): "updated",
            ("unit", U2): "deleted",
            ("activity", f"{U1}#200"): "deleted",
            ("activity", f"{U2}#100"): "deleted",
            ("activity", f"{U2}#200"): "deleted",
        }
        assert store.get(UNIT, U3) is not None, "units outside the subtree are untouched"
        with store.transaction() as tx:
            assert len(tx.replace_unit(unit_offer, source=SOURCE, unit_id=U1)) == 0

    def test_replace_unit_adds_new_units_and_activities(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1)))
        unit_offer = Offer.of(
            [
                legal_entity(),
                establishment(EG1),
                unit(U1),
                unit(U2, parent_unit_id=U1),
                activity(U1),
                activity(U2),
            ]
        )
        with store.transaction() as tx:
            result = tx.replace_unit(unit_offer, source=SOURCE, unit_id=U1)
        assert changes_of(result) == {("unit", U2): "created", ("activity", f"{U2}#100"): "created"}
        stored = store.get(ACTIVITY, f"{U2}#100")
        assert stored is not None
        assert stored.establishment == EG1

    def test_replace_unit_with_the_unit_gone_tombstones_its_subtree(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2, parent_unit_id=U1)))
        with store.transaction() as tx:
            result = tx.replace_unit(Offer(), source=SOURCE, unit_id=U1)
        assert set(changes_of(result)) == {
            ("unit", U1),
            ("unit", U2),
            ("activity", f"{U1}#100"),
            ("activity", f"{U2}#100"),
        }
        assert set(changes_of(result).values()) == {"deleted"}
        assert store.get(EntityKind.ESTABLISHMENT, EG1) is not None

    def test_delete_establishment_tombstones_its_subtree_only(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), extra=[professional("810000000001", unit_ids=(U1,))]), EG1)
        apply_site(store, site(EG2, unit(U3, EG2)), EG2)
        with store.transaction() as tx:
            result = tx.delete_establishment(EG1, source=SOURCE)
        assert changes_of(result) == {
            ("establishment", EG1): "deleted",
            ("unit", U1): "deleted",
            ("activity", f"{U1}#100"): "deleted",
            ("professional", "810000000001"): "deleted",
        }
        assert [change.kind for change in result.changes][:2] == [EntityKind.ESTABLISHMENT, UNIT]
        assert store.get(EntityKind.LEGAL_ENTITY, LEGAL) is not None
        assert store.get(UNIT, U3) is not None
        with store.transaction() as tx:
            assert len(tx.delete_establishment(EG1, source=SOURCE)) == 0
            assert len(tx.delete_establishment(EG2, source=OTHER_SOURCE)) == 0
        assert store.get(UNIT, U3) is not None

    # ---- transactions ----------------------------------------------------------------------------
    def test_an_exception_rolls_back_data_changes_and_sync_state(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1)))
        before_stats, before_changes = store.stats(), store.changes()

        def write_then_fail() -> None:
            with store.transaction(run_id="r1") as tx:
                tx.replace_establishment(site(EG1, unit(U2)), source=SOURCE, establishment_id=EG1)
                tx.replace_establishment(site(EG2, unit(U3, EG2)), source=SOURCE, establishment_id=EG2)
                tx.set_sync_state(SyncState(source=SOURCE, watermark=T0, taken_at=T0))
                tx.set_pending(_pending(EG2))
                tx.record_run(RunReport(run_id="r1", operation="sync", started=T0))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            write_then_fail()
        assert store.stats() == before_stats
        assert store.changes() == before_changes
        assert store.get(UNIT, U1) is not None
        assert store.get(UNIT, U2) is None
        assert store.get(EntityKind.ESTABLISHMENT, EG2) is None
        assert store.sync_state(SOURCE) is None
        assert store.pending() == []
        assert store.runs() == []

    def test_a_transaction_sees_its_own_writes(self, store: Store) -> None:
        with store.transaction() as tx:
            first = tx.replace_establishment(site(EG1, unit(U1)), source=SOURCE, establishment_id=EG1)
            second = tx.replace_establishment(site(EG1, unit(U1)), source=SOURCE, establishment_id=EG1)
        assert len(first) == 4
        assert len(second) == 0

    def test_writes_after_the_block_has_ended_are_refused(self, store: Store) -> None:
        with store.transaction() as tx:
            pass
        with pytest.raises(StoreError):
            tx.replace_establishment(site(EG1, unit(U1)), source=SOURCE, establishment_id=EG1)
        with pytest.raises(StoreError):
            tx.set_sync_state(SyncState(source=SOURCE, taken_at=T0))
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(site(EG1, unit(U1)).entities())
        with pytest.raises(StoreError):
            load.add(unit(U2))
        assert store.get(UNIT, U2) is None
        assert store.sync_state(SOURCE) is None

    def test_sync_state_is_committed_with_the_data(self, store: Store) -> None:
        state = SyncState(
            source=SOURCE,
            watermark=dt.datetime(2024, 3, 1, 6, 0, tzinfo=dt.UTC),
            taken_at=dt.datetime(2024, 3, 1, 6, 5, tzinfo=dt.UTC),
            last_full_pull=dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
        )
        with store.transaction() as tx:
            tx.replace_establishment(site(EG1, unit(U1)), source=SOURCE, establishment_id=EG1)
            tx.set_sync_state(state)
        assert store.sync_state(SOURCE) == state
        assert store.get(UNIT, U1) is not None
        newer = state.model_copy(update={"watermark": dt.datetime(2024, 3, 2, 6, 0, tzinfo=dt.UTC)})
        other = SyncState(source="another", taken_at=T0)
        with store.transaction() as tx:
            tx.set_sync_state(newer)
            tx.set_sync_state(other)
        assert store.sync_state(SOURCE) == newer
        assert store.sync_states() == [other, newer]

    # ---- change log ------------------------------------------------------------------------------
    def test_the_change_log_is_monotonic_and_pages_by_seq(self, store: Store) -> None:
        with store.transaction(run_id="run-1") as tx:
            created = tx.replace_establishment(
                site(EG1, unit(U1), unit(U2)), source=SOURCE, establishment_id=EG1
            )
        log = store.changes()
        assert [(c.kind, c.id, c.change) for c in log] == [(c.kind, c.id, c.change) for c in created.changes]
        assert all(c.source == SOURCE and c.run_id == "run-1" for c in log)
        assert all(c.at.tzinfo is not None for c in log)
        seqs = [c.seq for c in log]
        assert seqs == sorted(set(seqs))
        assert seqs[0] >= 1
        assert store.stats().last_change_seq == seqs[-1]
        assert store.changes(since=seqs[1]) == log[2:]
        assert store.changes(since=seqs[1], limit=2) == log[2:4]
        assert store.changes(since=seqs[-1]) == []

        def delete_then_fail() -> None:
            with store.transaction() as tx:
                tx.replace_establishment(site(EG1), source=SOURCE, establishment_id=EG1)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            delete_then_fail()
        assert store.changes() == log
        apply_site(store, site(EG1, unit(U1)))
        later = store.changes(since=seqs[-1])
        assert later
        assert all(c.seq > seqs[-1] for c in later)
        assert later[0].run_id is None
        assert {c.change for c in later} == {ChangeKind.DELETED}

    # ---- pending establishments and runs ---------------------------------------------------------
    def test_pending_establishments_count_attempts_until_cleared(self, store: Store) -> None:
        first = _pending(EG1, error="timeout", at=T0)
        with store.transaction() as tx:
            tx.set_pending(first)
            tx.set_pending(_pending(EG2))
            tx.set_pending(_pending(EG1, source=OTHER_SOURCE))
        assert store.pending(SOURCE) == [first, _pending(EG2)]
        assert len(store.pending()) == 3
        retry_at = T0 + dt.timedelta(hours=1)
        with store.transaction() as tx:
            tx.set_pending(_pending(EG1, error="HTTP 500", at=retry_at))
        (again,) = [item for item in store.pending(SOURCE) if item.establishment_id == EG1]
        assert (again.attempts, again.error) == (2, "HTTP 500")
        assert (again.first_failed, again.last_failed) == (T0, retry_at)
        with store.transaction() as tx:
            tx.clear_pending(SOURCE, EG1)
            tx.clear_pending(SOURCE, "1999999999")
        assert [item.establishment_id for item in store.pending(SOURCE)] == [EG2]
        assert [item.source for item in store.pending(OTHER_SOURCE)] == [OTHER_SOURCE]

    def test_a_latched_breaker_holds_per_source_until_released(self, store: Store) -> None:
        latch = _latch(SOURCE, run_id="run-1")
        with store.transaction() as tx:
            tx.latch_breaker(latch)
            tx.latch_breaker(_latch(OTHER_SOURCE, run_id="run-2"))
        assert store.breaker_latches(SOURCE) == [latch]
        assert [item.source for item in store.breaker_latches()] == sorted([SOURCE, OTHER_SOURCE])
        newer = _latch(SOURCE, run_id="run-3", at=T0 + dt.timedelta(hours=1))
        with store.transaction() as tx:
            tx.latch_breaker(newer)
        assert store.breaker_latches(SOURCE) == [newer]
        try:
            with store.transaction() as tx:
                tx.release_breaker(SOURCE)
                raise _Abort
        except _Abort:
            pass
        assert store.breaker_latches(SOURCE) == [newer], "a rolled-back release must keep the latch"
        with store.transaction() as tx:
            tx.release_breaker(SOURCE)
            tx.release_breaker("never-latched")
        assert store.breaker_latches(SOURCE) == []
        assert [item.source for item in store.breaker_latches()] == [OTHER_SOURCE]

    def test_runs_are_listed_newest_first(self, store: Store) -> None:
        reports = [
            RunReport(run_id=f"run-{n}", operation="sync", source=SOURCE, started=T0 + dt.timedelta(hours=n))
            for n in range(4)
        ]
        with store.transaction() as tx:
            for report in reports:
                tx.record_run(report)
        assert [r.run_id for r in store.runs()] == ["run-3", "run-2", "run-1", "run-0"]
        assert [r.run_id for r in store.runs(limit=2)] == ["run-3", "run-2"]
        finished = reports[1].model_copy(
            update={"finished": T0 + dt.timedelta(hours=5), "status": "failed", "counts": {"created": 3}}
        )
        with store.transaction() as tx:
            tx.record_run(finished)
        runs = store.runs()
        assert len(runs) == 4, "recording a run again updates it"
        assert runs[2] == finished
        aware = RunReport(
            run_id="aware", operation="pull", started=dt.datetime(2024, 3, 1, 20, 0, tzinfo=dt.UTC)
        )
        with store.transaction() as tx:
            tx.record_run(aware)
        assert [r.run_id for r in store.runs(limit=2)] == ["aware", "run-3"], "naive and aware times mix"

    # ---- bulk loads ------------------------------------------------------------------------------
    def test_a_bulk_load_swaps_in_a_snapshot_with_its_sync_state(self, store: Store) -> None:
        snapshot = list(site(EG1, unit(U1), unit(U2), equipment_codes=("E10",)).entities())
        state = SyncState(source=SOURCE, taken_at=T0, watermark=T0, last_full_pull=T0)
        with store.bulk_load(source=SOURCE, run_id="load-1") as load:
            load.add(snapshot[0])
            load.add_many(snapshot[1:])
            assert load.count == len(snapshot)
            load.set_sync_state(state)
            assert store.get(UNIT, U1) is None, "nothing is visible before the swap"
            assert store.sync_state(SOURCE) is None
        assert load.result == _counts(created=len(snapshot))
        assert store.sync_state(SOURCE) == state
        for entity in snapshot:
            stored = store.get(entity.kind, entity.id)
            assert stored is not None
            assert stored.entity == entity
            assert stored.content_hash == content_hash(entity)
            assert stored.source == SOURCE
        act = store.get(ACTIVITY, f"{U2}#100")
        assert act is not None
        assert (act.establishment, act.parent, act.region) == (EG1, U2, "11")
        log = store.changes()
        assert len(log) == len(snapshot)
        assert all(c.run_id == "load-1" and c.source == SOURCE for c in log)

    def test_a_bulk_load_derives_activity_establishments_whatever_the_order(self, store: Store) -> None:
        entities = list(site(EG1, unit(U1), extra=[professional("810000000001", unit_ids=(U1,))]).entities())
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(reversed(entities))
        act = store.get(ACTIVITY, f"{U1}#100")
        doctor = store.get(EntityKind.PROFESSIONAL, "810000000001")
        assert act is not None
        assert act.establishment == EG1
        assert doctor is not None
        assert doctor.establishment == EG1

    def test_a_bulk_load_reports_and_applies_what_changed(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2), unit(U3)))
        apply_site(store, site(EG2), EG2)
        snapshot: list[Entity] = [
            legal_entity(),
            establishment(EG1),
            establishment(EG2),
            unit(U1, name="Renommée"),
            unit(U2, final_closing_date=dt.date(2024, 5, 1)),
            unit(U3, EG2),
            activity(U1),
            activity(U2),
            activity(U3),
            activity(U3, "300"),
        ]
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(snapshot)
            preview = load.preview()
            assert _live(store, UNIT, U1).name != "Renommée", "nothing is visible before the swap"
        expected = _counts(created=1, updated=1, closed=1, moved=2)
        assert preview == expected
        assert load.result == expected
        moved = store.get(ACTIVITY, f"{U3}#100")
        assert moved is not None
        assert moved.establishment == EG2
        assert _live(store, UNIT, U2).closed

        with store.bulk_load(source=SOURCE) as load:
            load.add_many(snapshot[:5])
        assert load.result == _counts(deleted=5)
        gone = store.get(ACTIVITY, f"{U3}#300", include_deleted=True)
        assert gone is not None
        assert gone.deleted
        assert gone.entity == activity(U3, "300")
        assert _ids(store, EntityQuery(kind=UNIT)) == [U1, U2]

    def test_reloading_the_same_snapshot_changes_nothing(self, store: Store) -> None:
        snapshot = list(site(EG1, unit(U1), unit(U2)).entities())
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(snapshot)
        last_seq = store.stats().last_change_seq
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(snapshot)
            assert load.preview() == _counts()
        assert load.result == _counts()
        assert store.changes(since=last_seq) == []

    def test_a_bulk_load_revives_tombstones(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2)))
        apply_site(store, site(EG1, unit(U1)))
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(site(EG1, unit(U1), unit(U2)).entities())
        assert load.result == _counts(created=2)
        assert store.get(UNIT, U2) is not None

    def test_a_bulk_load_only_tombstones_its_own_source(self, store: Store) -> None:
        apply_site(store, site(EG2, unit(U3, EG2)), EG2, source=OTHER_SOURCE)
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(site(EG1, unit(U1)).entities())
        assert load.result == _counts(created=3, updated=1), "the shared legal entity changes hands"
        assert _live(store, EntityKind.LEGAL_ENTITY, LEGAL).source == SOURCE
        assert _live(store, UNIT, U3).source == OTHER_SOURCE
        assert store.stats().by_source == {SOURCE: 4, OTHER_SOURCE: 3}

    def test_a_bulk_load_counts_the_live_rows_of_other_sources_it_would_take_over(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1), unit(U2)), source=OTHER_SOURCE)
        apply_site(store, site(EG1, unit(U1), unit(U2)), source=OTHER_SOURCE)
        apply_site(store, site(EG2, unit(U3, EG2)), EG2, source="third")
        apply_site(store, site(EG2), EG2, source="third")  # U3 and its activity: tombstones
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(site(EG1, unit(U1)).entities())
            load.add_many(site(EG2, unit(U3, EG2)).entities())
            # EG1, U1 and its activity of OTHER_SOURCE; EG2 of "third" (U3 is a tombstone, the legal
            # entity is shared by design); none of SOURCE's own rows.
            assert load.takeovers() == {OTHER_SOURCE: 3, "third": 1}
            load.abort()
        with store.bulk_load(source=OTHER_SOURCE) as load:
            load.add_many(site(EG1, unit(U1), unit(U2)).entities())
            assert load.takeovers() == {}, "a load of the rows' own source takes nothing over"

    def test_an_aborted_bulk_load_changes_nothing(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1)))
        before = store.stats()
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(site(EG2, unit(U3, EG2)).entities())
            load.set_sync_state(SyncState(source=SOURCE, taken_at=T0))
            load.abort()
            with pytest.raises(StoreError):
                load.add(unit(U2))
        assert load.result == _counts()
        assert store.stats() == before
        assert store.sync_state(SOURCE) is None
        assert store.get(UNIT, U1) is not None

    def test_an_exception_during_a_bulk_load_changes_nothing(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1)))
        before_stats, before_log = store.stats(), store.changes()

        def load_then_fail() -> None:
            with store.bulk_load(source=SOURCE) as load:
                load.add_many(site(EG2, unit(U3, EG2)).entities())
                load.set_sync_state(SyncState(source=SOURCE, taken_at=T0))
                raise RuntimeError("parse error")

        with pytest.raises(RuntimeError, match="parse error"):
            load_then_fail()
        assert store.stats() == before_stats
        assert store.changes() == before_log
        assert store.sync_state(SOURCE) is None
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(site(EG1, unit(U1)).entities())
        assert load.result == _counts(), "nothing staged by the failed load leaks into the next one"

    def test_identical_copies_in_a_bulk_load_are_merged(self, store: Store) -> None:
        snapshot = list(site(EG1, unit(U1), unit(U2)).entities())
        with store.bulk_load(source=SOURCE) as load:
            load.add_many(snapshot)
            load.add(legal_entity())
            assert load.preview() == _counts(created=len(snapshot))
            load.add(unit(U1))
            assert load.count == len(snapshot) + 2
        assert load.result == _counts(created=len(snapshot))

    def test_differing_copies_in_a_bulk_load_are_a_data_error(self, store: Store) -> None:
        apply_site(store, site(EG1, unit(U1)))
        before = store.stats()

        def load_twice(preview_between: bool) -> None:
            with store.bulk_load(source=SOURCE) as load:
                load.add_many(site(EG1, unit(U1), unit(U2)).entities())
                if preview_between:
                    load.preview()
                load.add(unit(U2, name="again"))

        for preview_between in (False, True):
            with pytest.raises(DataError, match="11/1002"):
                load_twice(preview_between)
            assert store.stats() == before
            assert store.get(UNIT, U2) is None

    # ---- queries ---------------------------------------------------------------------------------
    # ---- capabilities (rorclient.store.capabilities) ---------------------------------------------
    def test_rows_staged_by_a_bulk_load_that_takes_them_are_stored_as_entities(self, store: Store) -> None:
        """:class:`StagesRows`: rows from reader processes store exactly what the entities would."""
        snapshot = list(site(EG1, unit(U1), unit(U2), equipment_codes=("E10",)).entities())
        with store.bulk_load(source=SOURCE) as load:
            if isinstance(load, StagesRows):
                load.add_staged_rows(staged_row(entity) for entity in snapshot)
            else:
                load.add_many(snapshot)
            assert load.count == len(snapshot)
        assert load.result == _counts(created=len(snapshot))
        for entity in snapshot:
            stored = _live(store, entity.kind, entity.id)
            assert stored.entity == entity
            assert stored.content_hash == content_hash(entity)
        assert _live(store, ACTIVITY, f"{U2}#100").establishment == EG1

    def test_writer_locks_are_held_per_name_and_released_with_the_block(
        self, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """:class:`LocksWriters` (or rorclient's file and process locks for the stores without it), and
        :class:`LocalDatabase`, whose lock files lie next to the database file."""
        # The lock files of other stores go under the user runtime directory, which platformdirs warns
        # about where XDG_RUNTIME_DIR is unset (containers, CI): give it one.
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
        with writer_lock(store, "conformance", wait=False) as held:
            assert held
            if not isinstance(store, LocksWriters) and (path := lock_file_path(store, "conformance")):
                assert path.is_file()
                if isinstance(store, LocalDatabase) and store.url.startswith("sqlite:"):
                    assert path.parent == store.path.parent
            with writer_lock(store, "conformance-other", wait=False) as other:
                assert other, "locks of other names are independent"
        with writer_lock(store, "conformance", wait=False) as again:
            assert again, "the lock is released when its block ends"

    def _populate(self, store: Store) -> None:
        apply_site(
            store,
            site(
                EG1,
                unit(U1, name="Service des Urgences"),
                unit(U2, parent_unit_id=U1, name="Cardiologie", final_closing_date=dt.date(2024, 1, 1)),
                codes=("100", "200"),
                establishment_entity=establishment(EG1, name="Hôpital Saint-Éloi"),
            ),
            EG1,
        )
        apply_site(store, site(EG2, unit(U3, EG2, name="Pédiatrie"), codes=("300",)), EG2)
        south = site(
            EG_SOUTH,
            unit("93/2001", EG_SOUTH, name="URGENCES PÉDIATRIQUES"),
            codes=("100",),
            legal=legal_entity("1130000019", name="AP-HM"),
            establishment_entity=establishment(EG_SOUTH, legal_entity_id="1130000019", name="Hôpital Nord"),
        )
        apply_site(store, south, EG_SOUTH, source=OTHER_SOURCE)
        apply_site(store, site(EG2), EG2)  # U3 and its activity become tombstones

    def test_find_filters_by_each_field(self, store: Store) -> None:
        self._populate(store)
        assert _ids(store, EntityQuery(kind=EntityKind.ESTABLISHMENT)) == [EG_SOUTH, EG1, EG2]
        assert _ids(store, EntityQuery(kind=UNIT, source=OTHER_SOURCE)) == ["93/2001"]
        assert _ids(store, EntityQuery(kind=UNIT, region="11")) == [U1, U2]
        assert _ids(store, EntityQuery(region="93")) == [
            "1130000019",
            EG_SOUTH,
            "93/2001",
            "93/2001#100",
        ]
        assert _ids(store, EntityQuery(establishment=EG1, kind=ACTIVITY)) == [
            f"{U1}#100",
            f"{U1}#200",
            f"{U2}#100",
            f"{U2}#200",
        ]
        assert _ids(store, EntityQuery(parent=U1)) == [U2, f"{U1}#100", f"{U1}#200"]
        assert _ids(store, EntityQuery(parent=LEGAL)) == [EG1, EG2]
        assert _ids(store, EntityQuery(closed=True)) == [U2]
        assert len(_ids(store, EntityQuery(closed=False))) == store.find(EntityQuery()).total - 1

    def test_find_by_activity_code_matches_activities_and_the_units_offering_them(self, store: Store) -> None:
        self._populate(store)
        assert _ids(store, EntityQuery(activity_code="100")) == [
            U1,
            U2,
            "93/2001",
            f"{U1}#100",
            f"{U2}#100",
            "93/2001#100",
        ]
        assert _ids(store, EntityQuery(activity_code="100", kind=UNIT, source=SOURCE)) == [U1, U2]
        assert _ids(store, EntityQuery(activity_code="300")) == [], "U3 and its activity are tombstones"
        assert _ids(store, EntityQuery(activity_code="300", include_deleted=True)) == [U3, f"{U3}#300"]
        assert _ids(store, EntityQuery(activity_code="999")) == []

    def test_find_by_name_ignores_case_and_accents(self, store: Store) -> None:
        self._populate(store)
        assert _ids(store, EntityQuery(name_contains="urgences")) == [U1, "93/2001"]
        assert _ids(store, EntityQuery(name_contains="pediatri")) == ["93/2001"]
        assert _ids(store, EntityQuery(name_contains="PÉDIATRI", include_deleted=True)) == [U3, "93/2001"]
        assert _ids(store, EntityQuery(name_contains="saint-eloi")) == [EG1]
        assert _ids(store, EntityQuery(name_contains="100%")) == []
        assert _ids(store, EntityQuery(name_contains="_")) == []

    def test_find_hides_tombstones_unless_asked(self, store: Store) -> None:
        self._populate(store)
        assert store.get(UNIT, U3) is None
        assert _ids(store, EntityQuery(establishment=EG2)) == [EG2]
        assert _ids(store, EntityQuery(establishment=EG2, include_deleted=True)) == [EG2, U3, f"{U3}#300"]
        deleted = store.find(EntityQuery(establishment=EG2, include_deleted=True)).items[1]
        assert deleted.deleted
        assert deleted.deleted_at is not None

    def test_find_pages_in_a_stable_order(self, store: Store) -> None:
        self._populate(store)
        everything = store.find(EntityQuery(limit=10_000))
        assert everything.next_offset is None
        assert everything.total == len(everything.items) == 13
        kinds = [item.kind for item in everything.items]
        assert kinds == sorted(kinds, key=list(EntityKind).index)
        for kind in EntityKind:
            ids = [item.id for item in everything.items if item.kind is kind]
            assert ids == sorted(ids)
        pages: list[StoredEntity] = []
        offset = 0
        while True:
            page = store.find(EntityQuery(limit=4, offset=offset))
            assert page.total == 13
            pages.extend(page.items)
            if page.next_offset is None:
                break
            assert page.next_offset == offset + 4
            offset = page.next_offset
        assert pages == list(everything.items)
        beyond = store.find(EntityQuery(offset=100))
        assert (beyond.items, beyond.total, beyond.next_offset) == ((), 13, None)

    def test_iter_entities_streams_in_kind_then_id_order(self, store: Store) -> None:
        self._populate(store)
        rows = list(store.iter_entities())
        assert [(row.kind, row.id) for row in rows] == sorted(
            ((row.kind, row.id) for row in rows), key=lambda key: (list(EntityKind).index(key[0]), key[1])
        )
        assert len(rows) == 15, "tombstones are included by default"
        assert len(list(store.iter_entities(include_deleted=False))) == 13
        assert [row.id for row in store.iter_entities(kind=UNIT)] == [U1, U2, U3, "93/2001"]
        assert [row.id for row in store.iter_entities(kind=UNIT, source=OTHER_SOURCE)] == ["93/2001"]
        assert rows == list(store.find(EntityQuery(include_deleted=True, limit=100)).items)

    def test_stats_count_live_entities_and_tombstones(self, store: Store) -> None:
        self._populate(store)
        stats = store.stats()
        assert stats.by_kind == {"legal_entity": 2, "establishment": 3, "unit": 3, "activity": 5}
        assert stats.by_source == {SOURCE: 9, OTHER_SOURCE: 4}
        assert stats.deleted == 2
        assert stats.last_change_seq == store.changes()[-1].seq


class _Abort(Exception):
    pass


def _latch(source: str, *, run_id: str, at: dt.datetime = T0) -> BreakerLatch:
    return BreakerLatch(
        source=source,
        run_id=run_id,
        operation="sync",
        tripped_at=at,
        deletions=120,
        closures=3,
        limit=50,
        live=500,
        reason="safety breaker: 120 deletions + 3 closures exceed the limit of 50",
    )


def _pending(
    establishment_id: str, *, source: str = SOURCE, error: str = "timeout", at: dt.datetime = T0
) -> PendingEstablishment:
    return PendingEstablishment(
        source=source, establishment_id=establishment_id, error=error, first_failed=at, last_failed=at
    )
