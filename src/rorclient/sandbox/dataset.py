"""Deterministic synthetic ROR offer, at any scale, for tests, benchmarks and the sandbox server.

:func:`generate_dataset` yields one :class:`~rorclient.models.Offer` per establishment (EG): its legal
entity (EJ, shared by the sites of a group), the EG, its internal organisations (pôles → services →
UF → UE, with parent links), activities (TRE_R211), equipment (TRE_R212) and, for ambulatory units,
professionals. The same seed always gives the same offers, and the stream is generated lazily, so a
national-size dataset (~50,000 establishments, ~250,000 units) runs in flat memory.

The data respect the rules a ROR client can observe: a UE has exactly one activity field and one care
mode (RG_EXP_010/011); an activity field of a unit is also on all its ancestors (RG_ALIM_006); every
open EG has at least one UE (RG_EXP_001); ``record.updated >= record.created``, and they are equal for
an entity never modified (RG_EXP_023); a telecom is at least as confidential as its contact
(RG_EXP_034); contacts of sensitive units are "très restreint" (RG_EXP_039); a contact has a nature
or a function with a name, never both (RG_EXP_040/041). Identifiers are FINESS-like idNat_Struct
(``1`` + département + 7 characters) and identifiantOI ``<region>/<number>`` in the region of the
establishment (see :mod:`rorclient.geography`).

:func:`write_extraction` writes a whole dataset as one ``csd:CSD`` file (plain, gzip or zip), and
:func:`establishments_for_size` picks the establishment count that gives a file of about a given size.
Run ``python -m rorclient.sandbox.dataset --help`` for the command line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import IO, Final, Literal, cast

from lxml import etree

from rorclient.codes import CSD_NS, Oid
from rorclient.csd.writer import ID_NAT_PS_OID, UNIT_ID_AUTHORITY, CsdWriter, WriterOptions, WriteStats
from rorclient.errors import ConfigError
from rorclient.geography import region_of_department
from rorclient.models import (
    Activity,
    Address,
    AddressLine,
    Age,
    CodedValue,
    Contact,
    Equipment,
    Establishment,
    ExtraElement,
    Geocode,
    Identifier,
    LegalEntity,
    Location,
    Offer,
    PatientsType,
    PersonName,
    Professional,
    RecordMeta,
    Telecom,
    Unit,
)
from rorclient.sandbox import _vocab as vocab
from rorclient.sandbox._vocab import City, Code

__all__ = [
    "MAX_ESTABLISHMENTS",
    "REFERENCE_TIME",
    "establishments_for_size",
    "generate_dataset",
    "write_extraction",
]

#: The "now" of the generated data: no record is created or updated after it.
REFERENCE_TIME: Final = dt.datetime(2024, 6, 1, 12, 0, 0)
#: Largest dataset the identifier scheme can number without collisions.
MAX_ESTABLISHMENTS: Final = 120_000

_SITES_PER_GROUP: Final = 8  # FINESS serials of a group: EJ = group * 8, its sites + 1..7
_UNITS_PER_SITE: Final = 1000
_FIRST_GENERATED_UNIT: Final = 1_000_000  # generated identifiantOI numbers start here
#: identifiantOI numbers (after ``<region>/``) that generation never uses, whatever the seed, group or
#: dataset size: kept for units created later by mutations, so that those never meet a generated id.
CREATED_UNIT_NUMBERS: Final = range(1, _FIRST_GENERATED_UNIT)
_EARLIEST_RECORD: Final = dt.datetime(2015, 1, 5, 8, 0, 0)
_NON_UE_CARE_MODE: Final = CodedValue(code="null", coding_scheme="")

Compression = Literal["gzip", "zip"]


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def generate_dataset(
    seed: int, establishments: int, *, as_of: dt.datetime = REFERENCE_TIME
) -> Iterator[Offer]:
    """Yield ``establishments`` offers, one per EG, deterministically from ``seed``.

    Each offer carries its EG's legal entity; sites of one legal entity come one after the other and
    repeat the same :class:`~rorclient.models.LegalEntity`. The offers of a smaller count are a prefix
    of those of a larger one (same seed). No record is dated after ``as_of``.
    """
    if not 0 <= establishments <= MAX_ESTABLISHMENTS:
        raise ConfigError(f"establishments must be between 0 and {MAX_ESTABLISHMENTS}, got {establishments}")
    produced = 0
    group = 0
    while produced < establishments:
        for offer in _Group(seed, group, as_of).offers(establishments - produced):
            yield offer
            produced += 1
        group += 1


def dataset_plan(seed: int, establishments: int, *, as_of: dt.datetime = REFERENCE_TIME) -> list[int]:
    """The number of sites of each legal-entity group of :func:`generate_dataset` (same arguments).

    Cheap (a few random draws per group): it lets a caller generate one group with
    :func:`generate_group` instead of the whole dataset. ``sum(plan) == establishments``.
    """
    if not 0 <= establishments <= MAX_ESTABLISHMENTS:
        raise ConfigError(f"establishments must be between 0 and {MAX_ESTABLISHMENTS}, got {establishments}")
    plan: list[int] = []
    remaining = establishments
    while remaining > 0:
        sites = min(_Group(seed, len(plan), as_of).shape()[1], remaining)
        plan.append(sites)
        remaining -= sites
    return plan


def generate_group(
    seed: int, group: int, *, limit: int | None = None, as_of: dt.datetime = REFERENCE_TIME
) -> list[Offer]:
    """The offers of one legal-entity group, as :func:`generate_dataset` yields them (at most ``limit``).

    Groups past the end of a dataset are valid too: they give new establishments whose identifiers no
    smaller dataset of the same seed uses.
    """
    if group < 0 or group * _SITES_PER_GROUP >= 10**6:  # the overseas serial has 6 digits
        raise ConfigError(f"group index out of range: {group}")
    return list(_Group(seed, group, as_of).offers(limit if limit is not None else _SITES_PER_GROUP))


def locate_establishment(establishment_id: str) -> tuple[int, int] | None:
    """``(group, site)`` of a generated establishment id (sites count from 1), ``None`` if the id cannot
    be one (a legal entity's id, another format). The id's département is not checked."""
    digits = establishment_id[4:] if establishment_id.startswith("197") else establishment_id[3:]
    if len(establishment_id) != 10 or not establishment_id.startswith("1") or not digits.isdigit():
        return None
    group, site = divmod(int(digits), _SITES_PER_GROUP)
    return (group, site) if site else None


def locate_unit(unit_id: str) -> tuple[int, int] | None:
    """``(group, site)`` of the establishment a generated unit id was created in, ``None`` if the id cannot
    be a generated one."""
    region, _, number = unit_id.partition("/")
    if not region or not number.isdigit() or int(number) < _FIRST_GENERATED_UNIT:
        return None
    group, site = divmod((int(number) - _FIRST_GENERATED_UNIT) // _UNITS_PER_SITE, _SITES_PER_GROUP)
    return (group, site) if site else None


def write_extraction(
    path: str | Path,
    seed: int,
    establishments: int,
    *,
    compress: Compression | None = None,
    as_of: dt.datetime = REFERENCE_TIME,
    options: WriterOptions | None = None,
) -> WriteStats:
    """Write a generated dataset as one ``csd:CSD`` extraction file; the same arguments give the same bytes.

    ``compress="gzip"`` writes a gzip stream, ``"zip"`` a zip archive holding one ``.xml`` member.
    """
    target = Path(path)
    offers = generate_dataset(seed, establishments, as_of=as_of)
    if compress == "zip":
        member = zipfile.ZipInfo(
            target.with_suffix("").name + ".xml" if target.suffix == ".zip" else "ror.xml"
        )
        member.compress_type = zipfile.ZIP_DEFLATED
        with zipfile.ZipFile(target, "w") as archive, archive.open(member, "w", force_zip64=True) as stream:
            return _write(offers, stream, gzip=False, options=options)
    if compress not in (None, "gzip"):
        raise ConfigError(f"unknown compression {compress!r}: expected 'gzip', 'zip' or none")
    with open(target, "wb") as stream:
        return _write(offers, stream, gzip=compress == "gzip", options=options)


def establishments_for_size(target_bytes: int, seed: int = 0, *, sample: int = 3000) -> int:
    """How many establishments give an uncompressed extraction of about ``target_bytes``.

    Writes the establishments of ``seed`` to nowhere until the target is reached (exact answer) or
    ``sample`` establishments were written, then extrapolates (within a few percent for the default
    sample: the size of an establishment varies from a 1-unit EHPAD to a 200-unit CHU).
    """
    if target_bytes <= 0:
        raise ConfigError(f"the target size must be positive, got {target_bytes}")
    count = 0
    with CsdWriter(cast(IO[bytes], _NullSink())) as writer:
        for count, offer in enumerate(generate_dataset(seed, min(sample, MAX_ESTABLISHMENTS)), start=1):
            writer.add_offer(offer)
            if writer.serialised_bytes >= target_bytes:
                return count
        written = max(writer.serialised_bytes, 1)
    return max(1, min(MAX_ESTABLISHMENTS, round(target_bytes * count / written)))


def _write(
    offers: Iterator[Offer], stream: IO[bytes], *, gzip: bool, options: WriterOptions | None
) -> WriteStats:
    with CsdWriter(stream, gzip=gzip, options=options) as writer:
        for offer in offers:
            writer.add_offer(offer)
    stats = writer.stats
    assert stats is not None
    return stats


class _NullSink:
    """A binary stream that only counts (the writer counts the bytes itself)."""

    def write(self, data: bytes) -> int:
        return len(data)


_PROFILE_BY_CATEGORY: Final = {profile.category: profile for profile in vocab.PROFILES}
_PROFILE_WEIGHTS: Final = [profile.weight for profile in vocab.PROFILES]

_PEDIATRIC_ACTIVITIES: Final = frozenset({"088", "094", "249", "227", "228"})
_GERIATRIC_ACTIVITIES: Final = frozenset({"050", "051", "241"})
_CITIES_BY_DEPARTMENT: Final[dict[str, tuple[City, ...]]] = {}
for _city in vocab.CITIES:
    _CITIES_BY_DEPARTMENT[_city.department] = (*_CITIES_BY_DEPARTMENT.get(_city.department, ()), _city)
_ACTIVITY_LABELS: Final = {code.code: code.label for codes in vocab.ACTIVITIES.values() for code in codes}
_CARE_MODE_LABELS: Final = {code.code: code.label for codes in vocab.CARE_MODES.values() for code in codes}
_CARE_MODE_LABELS[vocab.HAD_CARE_MODE.code] = vocab.HAD_CARE_MODE.label


# --------------------------------------------------------------------------------------------------
# Shared value objects (models are immutable, so equal values are built once)
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _coded(code: str, scheme: str, display: str | None = None) -> CodedValue:
    return CodedValue(code=code, coding_scheme=scheme, display=display)


def _field(code: str) -> CodedValue:
    return _coded(code, Oid.ACTIVITY_FIELD, vocab.ACTIVITY_FIELDS[code])


def _unit_type(level: str) -> CodedValue:
    return _coded(level, Oid.UNIT_TYPE, vocab.UNIT_TYPES[level])


def _confidentiality(level: str) -> CodedValue:
    return _coded(level, Oid.CONFIDENTIALITY, vocab.CONFIDENTIALITY_LEVELS[level])


def location_status(code: str) -> CodedValue:
    """A TRE_R203 location status (1 closed for good, 2 closed for now, 3 operational), labelled."""
    return _coded(code, Oid.LOCATION_STATUS, vocab.LOCATION_STATUSES[code])


@lru_cache(maxsize=256)
def _age(value: int) -> Age:
    return Age(value=value)


# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------


@dataclass
class _Node:
    """A unit being planned, before it becomes a :class:`Unit`."""

    level: str
    name: str
    children: list[_Node] = field(default_factory=list)
    activity_field: str | None = None
    care_mode: str | None = None
    activities: tuple[str, ...] = ()
    ages: tuple[int, int] = (0, 120)
    supported: tuple[str, ...] = ()
    fields: list[str] = field(default_factory=list)

    def walk(self) -> Iterator[tuple[_Node, _Node | None]]:
        """This node and its descendants, parents first, with their parent."""
        stack: list[tuple[_Node, _Node | None]] = [(self, None)]
        while stack:
            node, parent = stack.pop()
            yield node, parent
            stack.extend((child, node) for child in reversed(node.children))


class _Group:
    """One legal entity and its sites, generated from its own random stream (seed, group index)."""

    def __init__(self, seed: int, index: int, as_of: dt.datetime) -> None:
        self.rng = random.Random(f"rorclient-dataset:{seed}:{index}")  # noqa: S311 - reproducible, not secret
        self.index = index
        self.as_of = as_of

    def shape(self) -> tuple[vocab.Profile, int]:
        """The group's profile and number of sites: the first draws of its random stream."""
        rng = self.rng
        profile = rng.choices(vocab.PROFILES, weights=_PROFILE_WEIGHTS)[0]
        sites = 1 if profile.max_sites == 1 or rng.random() < 0.6 else rng.randint(2, profile.max_sites)
        return profile, sites

    def offers(self, limit: int) -> Iterator[Offer]:
        rng = self.rng
        profile, sites = self.shape()
        sites = min(sites, limit)
        city = rng.choice(vocab.CITIES)
        owner = rng.choice(profile.owners)
        legal_entity = self._legal_entity(owner, city)
        for site in range(1, sites + 1):
            site_profile = profile if site == 1 else _PROFILE_BY_CATEGORY[rng.choice(profile.siblings)]
            site_city = city if site == 1 else rng.choice(_CITIES_BY_DEPARTMENT[city.department])
            yield _Site(self, site, site_profile, site_city, legal_entity).offer()

    # -- legal entity ---------------------------------------------------------------------------------

    def _legal_entity(self, owner: str, city: City) -> LegalEntity:
        rng = self.rng
        statuses, names = vocab.OWNERS[owner]
        status = rng.choice(statuses)
        label, group = vocab.LEGAL_STATUSES[status]
        record = self.record(_EARLIEST_RECORD, self.as_of - dt.timedelta(days=400))
        legal_id = structure_id(city.department, self.index * _SITES_PER_GROUP)
        return LegalEntity(
            id=legal_id,
            other_ids=(Identifier(value=legal_id, authority=Oid.ID_NAT_STRUCT),),
            types=(
                _coded(status, Oid.LEGAL_STATUS, label),
                _coded(group, Oid.LEGAL_STATUS_GROUP, vocab.LEGAL_STATUS_GROUPS[group]),
            ),
            name=self.name(rng.choice(names), city),
            addresses=(self.address(city, record),),
            creation_date=(record.created - dt.timedelta(days=rng.randint(300, 12000))).date(),
            record=record,
        )

    # -- shared helpers -------------------------------------------------------------------------------

    def name(self, template: str, city: City) -> str:
        rng = self.rng
        return template.format(
            city=city.name.upper(),
            patron=rng.choice(vocab.PATRONS).upper(),
            place=rng.choice(vocab.PLACE_NAMES).upper(),
            surname=rng.choice(vocab.SURNAMES).upper(),
        )

    def record(self, earliest: dt.datetime, latest: dt.datetime, *, modified: float = 0.65) -> RecordMeta:
        """A record created between the two instants, modified since with probability ``modified``."""
        rng = self.rng
        latest = max(latest, earliest)
        created = earliest + dt.timedelta(seconds=rng.randint(0, int((latest - earliest).total_seconds())))
        updated = created
        if rng.random() < modified:
            updated = created + dt.timedelta(
                seconds=rng.randint(1, int((self.as_of - created).total_seconds()) + 1)
            )
            updated = min(updated, self.as_of)
        return RecordMeta(created=created, updated=updated)

    def child_record(self, owner: RecordMeta) -> RecordMeta:
        """A sub-object's record: created with its owner, updated no later than the owner."""
        span = int((owner.updated - owner.created).total_seconds())
        if span == 0 or self.rng.random() < 0.5:
            return owner
        return RecordMeta(
            created=owner.created, updated=owner.created + dt.timedelta(seconds=self.rng.randint(0, span))
        )

    def address(self, city: City, record: RecordMeta) -> Address:
        rng = self.rng
        parts = {
            "buildingNumber": str(rng.randint(1, 180)),
            "streetType": rng.choice(vocab.STREET_TYPES),
            "streetName": rng.choice(vocab.STREET_NAMES),
            "postCode": city.post_code,
            "cityName": city.name.upper(),
        }
        return Address(
            type="geographique", lines=(AddressLine(parts=parts),), record=self.child_record(record)
        )

    def geocode(self, city: City, record: RecordMeta) -> Geocode:
        rng = self.rng
        return Geocode(
            latitude=Decimal(f"{city.latitude + rng.uniform(-0.04, 0.04):.6f}"),
            longitude=Decimal(f"{city.longitude + rng.uniform(-0.06, 0.06):.6f}"),
            record=self.child_record(record),
        )

    def location(self, city: City, record: RecordMeta, status: str, *, coordinates: bool = True) -> Location:
        return Location(
            status=location_status(status),
            coordinates=self.geocode(city, record) if coordinates else None,
            city=_coded(city.insee, Oid.CITY, city.name),
            record=self.child_record(record),
        )

    def phone(self, city: City, *, mobile: bool = False) -> str:
        rng = self.rng
        if mobile:
            return f"0{rng.choice('67')}{rng.randint(0, 99_999_999):08d}"
        if city.department.startswith("97"):
            prefix = {"971": "0590", "972": "0596", "973": "0594", "974": "0262", "976": "0269"}[
                city.department
            ]
            return f"{prefix}{rng.randint(0, 999_999):06d}"
        zone = vocab.PHONE_ZONES.get(region_of_department(city.department) or "", "5")
        return f"0{zone}{rng.randint(0, 99_999_999):08d}"

    def contact(
        self,
        city: City,
        owner: RecordMeta,
        *,
        level: str,
        nature: str | None = None,
        function: str | None = None,
        slug: str,
    ) -> Contact:
        """A contact with one to three telecoms, each at least as confidential as the contact (RG_EXP_034)."""
        rng = self.rng
        record = self.child_record(owner)
        telecoms = [self.telecom("2", self.phone(city), level, record)]
        if rng.random() < 0.5:
            telecoms.append(self.telecom("3", f"{_mailbox(nature, function)}@{slug}.fr", level, record))
        if function is not None and rng.random() < 0.5:
            stricter = str(min(3, int(level) + rng.randint(0, 1)))
            telecoms.append(self.telecom("1", self.phone(city, mobile=True), stricter, record))
        name = None
        if function is not None:  # RG_EXP_041: a function needs a name and excludes a nature
            name = f"{rng.choice(vocab.FORENAMES)} {rng.choice(vocab.SURNAMES).upper()}"
        return Contact(
            name=name,
            function=_coded(function, Oid.CONTACT_FUNCTION, vocab.CONTACT_FUNCTIONS[function])
            if function
            else None,
            nature=_coded(nature, Oid.CONTACT_NATURE, vocab.CONTACT_NATURES[nature]) if nature else None,
            confidentiality=_confidentiality(level),
            telecoms=tuple(telecoms),
            record=record,
        )

    def telecom(self, channel: str, value: str, level: str, record: RecordMeta) -> Telecom:
        return Telecom(
            channel=_coded(channel, Oid.TELECOM_CHANNEL, vocab.TELECOM_CHANNELS[channel]),
            value=value,
            confidentiality=_confidentiality(level),
            record=record,
        )


def _mailbox(nature: str | None, function: str | None) -> str:
    if function is not None:
        return {"01": "direction", "05": "secretariat"}.get(function, "cadre")
    return {"01": "accueil", "02": "rdv", "03": "admissions", "06": "standard"}.get(nature or "", "contact")


def structure_id(department: str, serial: int) -> str:
    """A FINESS-like idNat_Struct: ``1`` + département + serial (overseas: ``1`` + ``97x`` + 6 digits)."""
    if department.startswith("97"):
        return f"197{department[2]}{serial:06d}"
    return f"1{department}{serial:07d}"


class _Site:
    """One establishment (EG) of a group, with its units, activities, equipment and professionals."""

    def __init__(
        self, group: _Group, site: int, profile: vocab.Profile, city: City, legal_entity: LegalEntity
    ) -> None:
        self.group = group
        self.rng = group.rng
        self.profile = profile
        self.city = city
        self.legal_entity = legal_entity
        self.serial = group.index * _SITES_PER_GROUP + site
        self.id = structure_id(city.department, self.serial)
        self.region = region_of_department(city.department) or "00"
        self.slug = f"etab{self.serial}"
        self.units: list[Unit] = []
        self.activities: list[Activity] = []
        self.equipment: list[Equipment] = []
        self.professionals: list[Professional] = []

    def offer(self) -> Offer:
        establishment = self._establishment()
        closing = establishment.closing_date
        root = self._plan()
        self._build_units(root, establishment.record, closing)
        return Offer(
            legal_entities=(self.legal_entity,),
            establishments=(establishment,),
            units=tuple(self.units),
            activities=tuple(self.activities),
            equipment=tuple(self.equipment),
            professionals=tuple(self.professionals),
        )

    # -- establishment --------------------------------------------------------------------------------

    def _establishment(self) -> Establishment:
        group, rng, profile, city = self.group, self.rng, self.profile, self.city
        record = group.record(self.legal_entity.record.created, group.as_of - dt.timedelta(days=200))
        closed = rng.random() < 0.02
        closing_date = _closing_date(rng, record) if closed else None
        types = [
            _coded(
                profile.category, Oid.ESTABLISHMENT_CATEGORY, vocab.ESTABLISHMENT_CATEGORIES[profile.category]
            )
        ]
        if profile.espic is not None:
            types.append(_coded(profile.espic, Oid.ESPIC, vocab.ESPIC[profile.espic]))
        contacts = [group.contact(city, record, level="1", nature="06", slug=self.slug)]
        if rng.random() < 0.6:
            contacts.append(group.contact(city, record, level="2", function="01", slug=self.slug))
        reason = rng.choice(vocab.CLOSING_REASONS) if closed else None
        return Establishment(
            id=self.id,
            other_ids=(Identifier(value=self.id, authority=Oid.ID_NAT_STRUCT),),
            legal_entity_id=self.legal_entity.id,
            types=tuple(types),
            name=group.name(rng.choice(profile.names), city),
            addresses=(group.address(city, record),),
            contacts=tuple(contacts),
            use_name=group.name("{place}", city) if rng.random() < 0.1 else None,
            location=group.location(city, record, "1" if closed else "3"),
            drop_zone=rng.random() < 0.5 if profile.shape == "full" else None,
            creation_date=(record.created - dt.timedelta(days=rng.randint(0, 9000))).date(),
            closing_date=closing_date,
            closing_reason=_coded(reason.code, Oid.CLOSING_REASON, reason.label) if reason else None,
            record=record,
        )

    # -- planning the unit tree -----------------------------------------------------------------------

    def _plan(self) -> _Node:
        """The unit tree under a virtual root (the EG), with activity fields propagated upwards."""
        root = _Node(level="0", name="")
        count = self.rng.randint(*self.profile.elementary_units)
        if self.profile.shape == "flat":
            root.children = self._flat_units(count)
        else:
            root.children = self._structured_units(count)
        _propagate_fields(root)
        return root

    def _flat_units(self, count: int) -> list[_Node]:
        templates = list(self.profile.templates)
        chosen = [templates[0], *self.rng.sample(templates[1:], min(count, len(templates)) - 1)]
        return [
            _Node(
                level="4",
                name=template.name,
                activity_field=template.field,
                care_mode=template.care_mode,
                activities=template.activities[: self.rng.randint(1, len(template.activities))],
                ages=template.ages,
                supported=template.supported,
            )
            for template in chosen
        ]

    def _structured_units(self, count: int) -> list[_Node]:
        rng, profile = self.rng, self.profile
        fields = [profile.fields[0], *(f for f in profile.optional_fields if rng.random() < 0.4)]
        shares = [count - (len(fields) - 1) * max(1, count // 6), *[max(1, count // 6)] * (len(fields) - 1)]
        tops: list[_Node] = []
        for activity_field, ue_count in zip(fields, shares, strict=True):
            services = self._services(activity_field, max(1, ue_count))
            if profile.shape == "service":
                tops.extend(services)
                continue
            pole_names = vocab.POLE_NAMES[activity_field]
            poles = [
                _Node(level="1", name=f"POLE {name}") for name in pole_names[: max(1, len(services) // 3)]
            ]
            for i, service in enumerate(services):
                poles[i % len(poles)].children.append(service)
            tops.extend(pole for pole in poles if pole.children)
        return tops

    def _services(self, activity_field: str, ue_count: int) -> list[_Node]:
        """Services (one per specialty) holding ``ue_count`` UEs, through an UF in the "full" shape."""
        rng = self.rng
        catalogue = vocab.ACTIVITIES[activity_field]
        specialties = rng.sample(catalogue, min(len(catalogue), max(1, (ue_count + 1) // 2)))
        care_modes = vocab.CARE_MODES[activity_field]
        services: list[_Node] = []
        remaining = ue_count
        for i, specialty in enumerate(specialties):
            share = remaining if i == len(specialties) - 1 else min(remaining, rng.randint(1, 3))
            if share <= 0:
                break
            remaining -= share
            modes = rng.sample(care_modes, min(share, len(care_modes)))
            ues = [
                _Node(
                    level="4",
                    name=f"{specialty.label.upper()} - {mode.label.upper()}",
                    activity_field=activity_field,
                    care_mode=mode.code,
                    activities=(specialty.code, *self._related(catalogue, specialty)),
                    ages=_ages(specialty.code),
                )
                for mode in modes
            ]
            service = _Node(level="2", name=f"SERVICE {specialty.label.upper()}")
            if self.profile.shape == "full":
                service.children.append(_Node(level="3", name=f"UF {specialty.label.upper()}", children=ues))
            else:
                service.children.extend(ues)
            services.append(service)
        return services

    def _related(self, catalogue: Sequence[Code], specialty: Code) -> tuple[str, ...]:
        extra = self.rng.choice((0, 0, 1, 2))
        others = [code.code for code in catalogue if code.code != specialty.code]
        return tuple(self.rng.sample(others, min(extra, len(others))))

    # -- building models ------------------------------------------------------------------------------

    def _build_units(self, root: _Node, owner: RecordMeta, closing: dt.date | None) -> None:
        group = self.group
        latest = group.as_of - dt.timedelta(days=30)
        if closing is not None:  # units of a closed establishment were created before it closed
            latest = min(latest, dt.datetime.combine(closing, dt.time(12)))
        ids: dict[int, str] = {}
        for number, (node, parent) in enumerate(root.walk()):
            if node is root:
                continue
            unit_id = f"{self.region}/{_FIRST_GENERATED_UNIT + self.serial * _UNITS_PER_SITE + number}"
            ids[id(node)] = unit_id
            record = group.record(owner.created, latest)
            unit = self._unit(
                node, unit_id, ids.get(id(parent)) if parent is not root else None, record, closing
            )
            self.units.append(unit)
            if node.level == "4":
                self._offer_of(node, unit)

    def _unit(
        self, node: _Node, unit_id: str, parent_id: str | None, record: RecordMeta, closing: dt.date | None
    ) -> Unit:
        group, rng, city = self.group, self.rng, self.city
        elementary = node.level == "4"
        final_closing = closing
        status = "1" if closing else "3"
        if closing is None and elementary:
            draw = rng.random()
            if draw < 0.02:
                final_closing = _closing_date(rng, record)
                status = "1"
            elif draw < 0.03:
                status = "2"
        sensitive = elementary and node.activity_field in ("01", "03") and rng.random() < 0.01
        contacts: tuple[Contact, ...] = ()
        if elementary and rng.random() < 0.6:
            level = "3" if sensitive else rng.choice("112")  # RG_EXP_039
            nature = rng.choice(("02", "03", "05"))
            contacts = (group.contact(city, record, level=level, nature=nature, slug=self.slug),)
        location = None
        if status != "3" or (elementary and rng.random() < 0.3):
            location = group.location(city, record, status, coordinates=rng.random() < 0.7)
        supported = tuple(
            _coded(code, Oid.SUPPORTED_PATIENT, vocab.SUPPORTED_PATIENTS[code]) for code in node.supported
        )
        care_mode = _NON_UE_CARE_MODE
        if node.care_mode is not None:
            care_mode = _coded(node.care_mode, Oid.CARE_MODE, _CARE_MODE_LABELS[node.care_mode])
        return Unit(
            id=unit_id,
            other_ids=(Identifier(value=unit_id, authority=UNIT_ID_AUTHORITY),),
            types=(_unit_type(node.level),),
            name=node.name,
            establishment_id=self.id,
            parent_unit_id=parent_id,
            contacts=contacts,
            geocode=group.geocode(city, record) if elementary and rng.random() < 0.2 else None,
            activity_fields=tuple(_field(code) for code in node.fields),
            care_mode=care_mode,
            patients=PatientsType(
                supported=supported,
                age_min=_age(node.ages[0]),
                age_max=_age(node.ages[1]),
                record=group.child_record(record),
            ),
            sensitive=sensitive,
            creation_date=record.created.date() if rng.random() < 0.8 else None,
            final_closing_date=final_closing,
            location=location,
            record=_reconciled(record, unit_id),
        )

    def _offer_of(self, node: _Node, unit: Unit) -> None:
        """Activities, equipment and (ambulatory units) professionals of an elementary unit."""
        group, rng = self.group, self.rng
        activity_field = node.activity_field
        assert activity_field is not None
        for code in node.activities:
            families: tuple[CodedValue, ...] = ()
            if activity_field == "04" and rng.random() < 0.3:
                family = rng.choice(vocab.ACT_FAMILIES)
                families = (_coded(family.code, Oid.ACT_FAMILY, family.label),)
            self.activities.append(
                Activity(
                    unit_id=unit.id,
                    code=_coded(code, Oid.OPERATIONAL_ACTIVITY, _ACTIVITY_LABELS[code]),
                    act_families=families,
                    record=group.child_record(unit.record),
                )
            )
        if rng.random() < _EQUIPMENT_RATE[activity_field]:
            catalogue = vocab.EQUIPMENT[activity_field]
            for item in rng.sample(catalogue, rng.randint(1, min(2, len(catalogue)))):
                self.equipment.append(
                    Equipment(
                        unit_id=unit.id,
                        code=_coded(item.code, Oid.EQUIPMENT, item.label),
                        count=rng.randint(1, 4),
                        record=group.child_record(unit.record),
                    )
                )
        if activity_field == "05":
            self._professionals(node, unit)

    def _professionals(self, node: _Node, unit: Unit) -> None:
        group, rng = self.group, self.rng
        professions = [
            code for code, activity in vocab.PROFESSION_ACTIVITY.items() if activity in node.activities
        ]
        for _ in range(rng.randint(1, 4)):
            profession = rng.choice(professions or ["10"])
            forename, surname = rng.choice(vocab.FORENAMES), rng.choice(vocab.SURNAMES)
            number = 10_000_000_000 + self.serial * 100 + len(self.professionals)
            professional_id = f"8{number:011d}"
            self.professionals.append(
                Professional(
                    id=professional_id,
                    other_ids=(Identifier(value=professional_id, authority=ID_NAT_PS_OID),),
                    types=(_coded(profession, Oid.PROFESSION, vocab.PROFESSIONS[profession]),),
                    person=PersonName(
                        common_names=(f"{surname.upper()} {forename}",),
                        forename=forename,
                        surname=surname.upper(),
                    ),
                    establishment_ids=(self.id,),
                    unit_ids=(unit.id,),
                    record=group.child_record(unit.record),
                )
            )


_EQUIPMENT_RATE: Final = {"01": 0.35, "02": 0.5, "03": 0.2, "04": 0.25, "05": 0.15}


_RECONCILED_ONE_IN: Final = 25


def _reconciled(record: RecordMeta, unit_id: str) -> RecordMeta:
    """About one unit in 25 carries a reconciliation comment in its record (``record/extension``).
    Chosen from the unit's id rather than drawn, so that the random stream, hence every other value of
    the dataset, stays what it was before comments were generated."""
    digest = zlib.crc32(unit_id.encode())
    if digest % _RECONCILED_ONE_IN:
        return record
    comment = vocab.RECONCILIATION_COMMENTS[digest // _RECONCILED_ONE_IN % len(vocab.RECONCILIATION_COMMENTS)]
    return record.model_copy(update={"extras": (reconciliation_extension(comment),)})


def reconciliation_extension(comments: str, *, recognation: str | None = None) -> ExtraElement:
    """A ``record/extension`` (``recordExtension``) as the reader keeps it, in canonical form."""
    extension = etree.Element(
        f"{{{CSD_NS}}}extension",
        {"type": WriterOptions().extension_type, "urn": WriterOptions().extension_urn},
        nsmap={"csd": CSD_NS},
    )
    if recognation is not None:
        etree.SubElement(extension, f"{{{CSD_NS}}}recognation").text = recognation
    etree.SubElement(extension, f"{{{CSD_NS}}}comments").text = comments
    return ExtraElement(name=str(extension.tag), xml=etree.tostring(extension, encoding="unicode"))


def _closing_date(rng: random.Random, record: RecordMeta) -> dt.date:
    """A closing date between the creation and the last update of the closed entity."""
    first, last = record.created.date(), record.updated.date()
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


def _ages(activity: str) -> tuple[int, int]:
    if activity in _PEDIATRIC_ACTIVITIES:
        return (0, 17)
    if activity in _GERIATRIC_ACTIVITIES:
        return (75, 120)
    return (18, 120)


def _propagate_fields(root: _Node) -> None:
    """Give every unit the activity fields of its UEs (RG_ALIM_006), in TRE_R227 order."""
    order = list(vocab.ACTIVITY_FIELDS)
    for node, _ in reversed(list(root.walk())):
        found = {node.activity_field} if node.activity_field else set()
        for child in node.children:
            found.update(child.fields)
        node.fields = sorted(found, key=order.index)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def _size(text: str) -> int:
    units = {"K": 1000, "M": 1000**2, "G": 1000**3}
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Write a synthetic extraction: ``python -m rorclient.sandbox.dataset OUT --size 100MB``."""
    parser = argparse.ArgumentParser(prog="python -m rorclient.sandbox.dataset", description=main.__doc__)
    parser.add_argument("out", type=Path, help="file to write (.xml, .xml.gz or .zip)")
    parser.add_argument("--seed", type=int, default=0)
    count = parser.add_mutually_exclusive_group(required=True)
    count.add_argument("--establishments", type=int, help="number of establishments (EG)")
    count.add_argument("--size", type=_size, help="approximate uncompressed size (100MB, 1G...)")
    parser.add_argument("--compress", choices=("gzip", "zip"), help="default: from the file name")
    args = parser.parse_args(argv)
    compress = args.compress
    if compress is None:
        compress = {".gz": "gzip", ".zip": "zip"}.get(args.out.suffix)
    establishments = args.establishments or establishments_for_size(args.size, args.seed)
    started = time.perf_counter()
    stats = write_extraction(args.out, args.seed, establishments, compress=compress)
    elapsed = time.perf_counter() - started
    print(
        f"{args.out}: {establishments} establishments, {stats.facilities} units, "
        f"{stats.services} activities, "
        f"{stats.devices} equipment, {stats.providers} professionals; {stats.bytes_written / 1e6:.1f} MB XML "
        f"({args.out.stat().st_size / 1e6:.1f} MB on disk) in {elapsed:.1f} s "
        f"({stats.bytes_written / 1e6 / elapsed:.1f} MB/s, {establishments / elapsed:.0f} establishments/s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
