"""Nomenclature labels from the ANS NOS export (the package ships none)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from rorclient.codes import Oid
from rorclient.errors import ConfigError, DataError
from rorclient.models import CodedValue
from rorclient.nomenclature import Nomenclatures
from tests._shared import NOMENCLATURES, require_shared

NOS_ZIP = NOMENCLATURES / "2023-06-14_NOS-Fichiers_Publics.zip"


@pytest.fixture(scope="module")
def nos() -> Nomenclatures:
    require_shared()
    return Nomenclatures.load(NOS_ZIP)


def test_labels_the_codes_ror_documents_use(nos: Nomenclatures) -> None:
    assert nos.label(Oid.OPERATIONAL_ACTIVITY, "037") == "Dermatologie"
    assert nos.label(Oid.UNIT_TYPE, "4") == "Unité élémentaire"
    assert nos.label(Oid.ACTIVITY_FIELD, "01") == "Médecine, Chirurgie, Obstétrique (MCO)"
    assert nos.label(Oid.CARE_MODE, "32") is not None


def test_unknown_codes_and_tables_are_not_errors(nos: Nomenclatures) -> None:
    assert nos.label(Oid.OPERATIONAL_ACTIVITY, "does-not-exist") is None
    assert nos.label("9.9.9.9", "1") is None


def test_describe_fills_a_missing_display_only(nos: Nomenclatures) -> None:
    bare = CodedValue(code="037", coding_scheme=Oid.OPERATIONAL_ACTIVITY)
    assert nos.describe(bare).display == "Dermatologie"
    labelled = bare.model_copy(update={"display": "Dermato (local label)"})
    assert nos.describe(labelled).display == "Dermato (local label)"


def test_tables_are_found_by_oid_or_name(nos: Nomenclatures) -> None:
    table = nos.table("TRE_R211")
    assert table is not None and table.oid == Oid.OPERATIONAL_ACTIVITY
    assert nos.table(Oid.OPERATIONAL_ACTIVITY) is table
    assert len(table.codes) > 300


def test_retired_codes_are_kept_with_their_end_date(nos: Nomenclatures) -> None:
    table = nos.table(Oid.OPERATIONAL_ACTIVITY)
    assert table is not None
    retired = table.codes["008"]  # end-dated 2016-12-22 in the 2023 export
    assert retired.retired and retired.label


def test_loads_a_directory_and_a_single_file(tmp_path: Path) -> None:
    require_shared()
    with zipfile.ZipFile(NOS_ZIP) as archive:
        archive.extract("TRE_R211-ActiviteOperationnelle.tabs", tmp_path)
        archive.extract("JDV_J20-ChampActivite-ROR.tabs", tmp_path)
    from_dir = Nomenclatures.load(tmp_path)
    assert len(from_dir) == 2
    single = Nomenclatures.load(tmp_path / "JDV_J20-ChampActivite-ROR.tabs")
    # A value set's codes are filed under the terminology OID documents use.
    assert single.label(Oid.ACTIVITY_FIELD, "04") == "Médico-social (MS)"


def test_missing_or_malformed_exports_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Nomenclatures.load(tmp_path / "nope.zip")
    bad = tmp_path / "bad.tabs"
    bad.write_text("hello;world\n")
    with pytest.raises(DataError, match=r"bad\.tabs"):
        Nomenclatures.load(bad)
