"""Decode nomenclature codes to labels from an ANS NOS export.

rorclient ships no nomenclature data: the tables change (codes added, relabelled, retired) and belong to
ANS. Point :meth:`Nomenclatures.load` at what you downloaded from the NOS publication — the zip of
``.tabs`` files, a directory of them, or one ``.tabs`` file — and look codes up by coding-scheme OID.

Unknown codes are not errors: the ROR keeps retired codes in circulation, so :meth:`label` returns
``None`` and callers keep the code.
"""

from __future__ import annotations

import datetime as dt
import os
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rorclient.errors import ConfigError, DataError
from rorclient.models import CodedValue

__all__ = ["CodeEntry", "CodeTable", "Nomenclatures"]


class CodeEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    label: str
    short_label: str | None = None
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None

    @property
    def retired(self) -> bool:
        return self.valid_until is not None and self.valid_until <= dt.date.today()


class CodeTable(BaseModel):
    """One nomenclature table (``TRE_R211-ActiviteOperationnelle``...) with its codes."""

    model_config = ConfigDict(frozen=True)

    oid: str
    name: str
    description: str = ""
    codes: dict[str, CodeEntry]


class Nomenclatures:
    """Code tables by OID, with label lookup."""

    def __init__(self, tables: Iterable[CodeTable] = ()) -> None:
        self._tables: dict[str, CodeTable] = {}
        for table in tables:
            known = self._tables.get(table.oid)
            if known is None or known.name.startswith("JDV_"):
                # A terminology (TRE_) is the reference for its OID; a value set only fills gaps.
                merged = table.codes if known is None else {**known.codes, **table.codes}
                self._tables[table.oid] = table.model_copy(update={"codes": merged})
            else:
                merged = {**table.codes, **known.codes}
                self._tables[table.oid] = known.model_copy(update={"codes": merged})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Nomenclatures:
        """Load a NOS export: a ``.zip`` of ``.tabs`` files, a directory of them, or one ``.tabs`` file."""
        location = Path(path)
        if not location.exists():
            raise ConfigError(f"nomenclature export not found: {location}")
        return cls(_read_tables(location))

    def __len__(self) -> int:
        return len(self._tables)

    def __contains__(self, oid: object) -> bool:
        return oid in self._tables

    def tables(self) -> list[CodeTable]:
        return sorted(self._tables.values(), key=lambda table: table.name)

    def table(self, oid_or_name: str) -> CodeTable | None:
        """A table by OID (``1.2.250.1.213.3.3.12``) or by name prefix (``TRE_R211``)."""
        if oid_or_name in self._tables:
            return self._tables[oid_or_name]
        for table in self._tables.values():
            if table.name == oid_or_name or table.name.startswith(oid_or_name + "-"):
                return table
        return None

    def label(self, coding_scheme: str, code: str) -> str | None:
        table = self._tables.get(coding_scheme)
        entry = table.codes.get(code) if table else None
        return entry.label if entry else None

    def describe(self, coded: CodedValue) -> CodedValue:
        """``coded`` with its display filled from the tables when it had none."""
        if coded.display:
            return coded
        label = self.label(coded.coding_scheme, coded.code)
        return coded if label is None else coded.model_copy(update={"display": label})


def _read_tables(location: Path) -> Iterator[CodeTable]:
    for name, raw in _tabs_files(location):
        table = _parse_tabs(name, raw)
        if table is not None:
            yield table


def _tabs_files(location: Path) -> Iterator[tuple[str, bytes]]:
    if location.is_dir():
        for file in sorted(location.glob("*.tabs")):
            yield file.name, file.read_bytes()
    elif zipfile.is_zipfile(location):
        with zipfile.ZipFile(location) as archive:
            for member in sorted(archive.namelist()):
                if member.endswith(".tabs"):
                    yield member, archive.read(member)
    else:
        yield location.name, location.read_bytes()


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _date(value: str) -> dt.date | None:
    value = value.strip()
    if len(value) < 8 or not value[:8].isdigit():
        return None
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def _parse_tabs(name: str, raw: bytes) -> CodeTable | None:
    """Parse one NOS ``.tabs`` file: a header, the table's description, a column header, then codes.

    Code tables (TRE_, JDV_) have ``<OID>;<Code>;...`` columns; association tables (ASS_) do not and
    are skipped (``None``). A value set (JDV_) lists codes of a terminology (TRE_) under the TRE's OID,
    which is what documents put in ``codingScheme``: the table is keyed by that OID.
    """
    lines = [line for line in _decode(raw).splitlines() if line.strip()]
    if len(lines) < 3 or not lines[0].startswith("<OID>"):
        raise DataError("not a NOS .tabs file (missing the <OID> header)", source=name)
    if not lines[2].startswith("<OID>;<Code>"):
        return None
    meta = lines[1].split(";")
    table_name = (meta[2] if len(meta) > 2 else name).removesuffix(".tabs")
    description = meta[3] if len(meta) > 3 else ""
    oid = meta[0].strip()
    codes: dict[str, CodeEntry] = {}
    for number, line in enumerate(lines[3:], start=4):
        fields = line.split(";")
        if len(fields) < 3:
            raise DataError("a code line needs at least OID;code;label", source=name, line=number)
        oid = fields[0].strip() or oid
        code = fields[1].strip()
        codes[code] = CodeEntry(
            code=code,
            label=fields[2].strip(),
            short_label=(fields[3].strip() or None) if len(fields) > 3 else None,
            valid_from=_date(fields[5]) if len(fields) > 5 else None,
            valid_until=_date(fields[6]) if len(fields) > 6 else None,
        )
    return CodeTable(oid=oid, name=table_name, description=description, codes=codes)
