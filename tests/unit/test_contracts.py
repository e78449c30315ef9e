"""Data contracts: every YAML loads, classifies every field, and compiles to GE."""

from __future__ import annotations

import copy

import pytest

import data_contracts as dc
from data_contracts import compiler

PII_FIELDS = {
    "participants": ["first_name", "middle_name", "last_name", "suffix", "date_of_birth", "ssn",
                     "street_address", "city", "zip", "phone", "email"],
    "wages": ["ssn", "first_name", "last_name", "date_of_birth"],
}
EXPECTED_TYPE = {
    "notNull": "ExpectColumnValuesToNotBeNull",
    "regex": "ExpectColumnValuesToMatchRegex",
    "maxLength": "ExpectColumnValueLengthsToBeBetween",
    "noControlCharacters": "ExpectColumnValuesToNotMatchRegex",
    "noFormula": "ExpectColumnValuesToNotMatchRegex",
    "numeric": "ExpectColumnValuesToMatchRegex",
    "between": "ExpectColumnValuesToBeBetween",
    "ageInRange": "ExpectColumnValuesToBeBetween",
    "dateValid": "ExpectColumnValuesToBeNull",
    "ssnValid": "ExpectColumnValuesToBeNull",
    "unique": "ExpectColumnValuesToBeNull",
    "notBefore": "ExpectColumnValuesToBeNull",
    "wellFormed": "ExpectColumnValuesToBeNull",
}


@pytest.mark.parametrize("name", dc.DATASETS)
def test_contract_loads_and_compiles(name: str) -> None:
    contract = dc.load_contract(name)
    assert contract.name == name
    assert contract.raw["kind"] == "DataContract"
    assert contract.raw["apiVersion"].startswith("v3")
    suite = dc.compile_suite(contract)
    assert suite.name == f"{name}@{contract.version}"
    assert len(suite.expectations) == len(contract.rules) + 1  # + the structural rule
    rule_ids = {rule.id for rule in compiler.all_rules(contract)}
    assert {e.meta["rule_id"] for e in suite.expectations} == rule_ids
    for expectation in suite.expectations:
        rule = next(r for r in compiler.all_rules(contract) if r.id == expectation.meta["rule_id"])
        assert expectation.description == rule.message
        assert expectation.severity.value == ("critical" if rule.severity == "error"
                                              else "warning")


@pytest.mark.parametrize("name", dc.DATASETS)
def test_every_property_classified_and_every_rule_explained(name: str) -> None:
    contract = dc.load_contract(name)
    for prop in contract.properties:
        assert prop.classification in dc.CLASSIFICATIONS, prop.name
    for rule in contract.rules:
        assert rule.severity in {"error", "warning"}
        assert rule.message and len(rule.message) > 10
        assert all(col in contract.columns for col in rule.columns)
    required = set(contract.required_columns)
    assert required, "every dataset has required columns"
    not_null = {r.column for r in contract.rules if r.rule == "notNull"}
    assert not_null == required


@pytest.mark.parametrize("name", sorted(PII_FIELDS))
def test_pii_fields_are_classified_pii(name: str) -> None:
    contract = dc.load_contract(name)
    for field in PII_FIELDS[name]:
        assert contract.property(field).classification in dc.PII_CLASSIFICATIONS, field


def test_participants_canonical_columns_and_required() -> None:
    contract = dc.load_contract("participants")
    identity = ["partner_record_id", "first_name", "middle_name", "last_name", "suffix",
                "date_of_birth", "ssn", "sex", "street_address", "city", "state", "zip",
                "phone", "email"]
    assert contract.columns[: len(identity)] == identity
    assert contract.required_columns == ["partner_record_id", "first_name", "last_name",
                                         "date_of_birth"]
    for flag in ["hispanic_latino", "race", "disability", "veteran", "highest_education",
                 "employment_status_at_entry", "returning_citizen", "homeless", "low_income",
                 "english_learner", "basic_skills_deficient", "single_parent", "foster_care"]:
        assert not contract.property(flag).required
    assert contract.property("partner_record_id").unique


@pytest.mark.parametrize(("dataset", "field", "element"), [
    ("participants", "date_of_birth", 200), ("participants", "sex", 201),
    ("participants", "disability", 202), ("participants", "veteran", 204),
    ("participants", "hispanic_latino", 210), ("participants", "employment_status_at_entry", 400),
    ("participants", "highest_education", 408), ("enrollments", "entry_date", 900),
    ("enrollments", "exit_date", 901),
])
def test_pirl_elements(dataset: str, field: str, element: int) -> None:
    prop = dc.load_contract(dataset).property(field)
    assert prop.pirl_element == element
    assert prop.custom.get("pirlElementVerified") is True


def test_enrollment_code_lists() -> None:
    contract = dc.load_contract("enrollments")
    values = {r.column: set(r.params["values"]) for r in contract.rules
              if r.rule == "allowedValues"}
    assert values["funding_stream"] == {
        "wioa_adult", "wioa_dislocated_worker", "wioa_youth", "careerconnect",
        "summer_youth_employment", "foundation_career_pathways"}
    assert values["sector"] == {"healthcare", "it", "manufacturing", "construction",
                                "clean_energy", "business_financial_services", "transportation"}


@pytest.mark.parametrize("name", dc.DATASETS)
def test_rules_map_to_expected_expectations(name: str) -> None:
    contract = dc.load_contract(name)
    for check in compiler.checks(contract):
        rule = check.rule
        if rule.rule == "allowedValues":
            expected = ("ExpectColumnValuesToMatchRegex" if rule.params.get("separator")
                        else "ExpectColumnValuesToBeInSet")
        else:
            expected = EXPECTED_TYPE[rule.rule]
        assert check.expectation == expected, rule.id
        derived = compiler.derived_column(rule)
        if derived is not None:
            assert check.kwargs["column"] == derived
            assert derived.startswith("__")
        else:
            assert check.kwargs["column"] == rule.column


def test_age_range_override_compiles_into_suite() -> None:
    contract = dc.load_contract("participants")
    suite = dc.compile_suite(contract, age_range=(16, 24))
    age = [e for e in suite.expectations if e.meta["code"] == "age_out_of_range"]
    assert len(age) == 1
    assert (age[0].min_value, age[0].max_value) == (16, 24)
    assert age[0].column == "__age__date_of_birth"


def test_race_allows_several_codes() -> None:
    import re

    contract = dc.load_contract("participants")
    check = next(c for c in compiler.checks(contract) if c.rule.id == "race.allowedValues")
    pattern = re.compile(check.kwargs["regex"])
    assert pattern.search("asian;white")
    assert pattern.search("black_african_american")
    assert not pattern.search("asian;martian")


def test_formula_regex_scope() -> None:
    import re

    formula = re.compile(compiler.FORMULA_REGEX)
    for bad in ['=HYPERLINK("http://x","y")', "@SUM(A1)", "+cmd|' /C calc'!A0", "-2+3",
                "=1+1"]:
        assert formula.search(bad), bad
    for good in ["Mary-Jane", "O'Neil", "St. John", "12 Main St"]:
        assert not formula.search(good), good


def test_contract_version() -> None:
    assert dc.contract_version("participants") == "participants@1.1.0"
    with pytest.raises(KeyError):
        dc.load_contract("nope")


def test_malformed_contract_is_refused() -> None:
    contract = dc.load_contract("assessments")
    doc = copy.deepcopy(dict(contract.raw))
    del doc["schema"][0]["properties"][0]["classification"]
    with pytest.raises(dc.ContractError, match="classification"):
        dc.parse_contract(doc, contract.path)
    doc = copy.deepcopy(dict(contract.raw))
    doc["schema"][0]["properties"][1]["quality"][0]["rule"] = "madeUp"
    with pytest.raises(dc.ContractError, match="unknown rule"):
        dc.parse_contract(doc, contract.path)
    doc = copy.deepcopy(dict(contract.raw))
    doc["schema"][0]["properties"][1]["quality"][0]["severity"] = "fatal"
    with pytest.raises(dc.ContractError, match="severity"):
        dc.parse_contract(doc, contract.path)
