"""One source for each fact: lists derived from the contracts, schema files found one way."""

from __future__ import annotations

import jsonschema
import pytest

import schemas
from data_contracts import DATASETS, EVENT_DATASETS, load_contract, pii_columns
from linkage.spec import CURRENT_SPEC, SPEC_VERSION, SPEC_VERSIONS, load_link_spec
from pipelines.records import PROCESSED_DATASETS, PROFILE_COLUMNS
from pipelines.synthetic.participants import CANONICAL_COLUMNS


def test_profile_columns_are_the_participants_contracts_sensitive_properties() -> None:
    """The reporting attributes stored and published: a reclassified column shows here."""
    assert PROFILE_COLUMNS == (
        "hispanic_latino", "race", "disability", "veteran", "highest_education",
        "employment_status_at_entry", "returning_citizen", "homeless", "low_income",
        "english_learner", "basic_skills_deficient", "single_parent", "foster_care")
    contract = load_contract("participants")
    assert all(contract.property(c).classification == "sensitive" for c in PROFILE_COLUMNS)
    assert not set(PROFILE_COLUMNS) & set(contract.pii_columns)


def test_synthetic_extract_columns_are_the_participants_contracts_pii_columns() -> None:
    assert pii_columns("participants") == CANONICAL_COLUMNS
    assert CANONICAL_COLUMNS[0] == "partner_record_id" and "ssn" in CANONICAL_COLUMNS


def test_event_datasets_are_every_contract_but_participants() -> None:
    assert set(EVENT_DATASETS) == {"enrollments", "services", "credentials", "employment",
                                   "assessments", "wages", "program_costs"}
    assert set(PROCESSED_DATASETS) == set(DATASETS)


def test_every_linkage_spec_validates_against_the_meta_schema() -> None:
    meta = schemas.load_meta_schema("linkage")
    assert tuple(meta["properties"]["version"]["enum"]) == SPEC_VERSIONS
    assert SPEC_VERSION == f"pathlink-linkage/{CURRENT_SPEC}" == SPEC_VERSIONS[-1]
    for number in range(1, CURRENT_SPEC + 1):
        spec = schemas.load_schema("linkage", number)
        jsonschema.validate(spec, meta)
        assert load_link_spec(number).version == f"pathlink-linkage/{number}"


def test_schema_files_are_found_one_way() -> None:
    for name in schemas.DDL_NAMES:
        assert "CREATE" in schemas.ddl(name)
    with pytest.raises(ValueError, match="unknown DDL"):
        schemas.ddl("../secrets")
    with pytest.raises(ValueError, match="bad schema kind"):
        schemas.load_schema("../linkage", 1)
