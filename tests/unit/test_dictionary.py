"""The evaluator data dictionary is generated from the DDL and contracts and never drifts."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
import typer
from typer.testing import CliRunner

import data_contracts
from pipelines.cli import release
from pipelines.warehouse import dictionary, disclosure, measures, roi
from schemas import ddl

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "data_dictionary.md"


@pytest.fixture(scope="module")
def text() -> str:
    return dictionary.build_dictionary()


def section(text: str, heading: str) -> str:
    """The text under the Markdown heading containing ``heading`` up to the next heading."""
    match = re.search(rf"^#+ {re.escape(heading)}.*$", text, re.MULTILINE)
    assert match, f"no heading {heading!r}"
    rest = text[match.end():]
    end = re.search(r"^#+ ", rest, re.MULTILINE)
    return rest[:end.start()] if end else rest


def rows(block: str) -> dict[str, list[str]]:
    """Table rows of a section keyed by their first cell (without backticks)."""
    out = {}
    for line in block.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            out[cells[0].strip("`")] = cells
    return out


def catalog(con: duckdb.DuckDBPyConnection, where: str) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        f"WHERE schema_name = 'main' AND NOT internal AND {where} ORDER BY table_name, column_index"
    ).fetchall():
        found.setdefault(table, []).append((column, dtype))
    return found


def test_every_warehouse_table_view_and_column_listed(text):
    con = duckdb.connect()
    con.execute(ddl("warehouse"))
    measures.create_warehouse_facts(con)
    measures.create_warehouse_views(con)
    relations = catalog(con, "true")
    assert {"person", "participation", "enrollment", "wage", "outcome_exit",
            "person_quarter"} <= set(relations)
    for relation, columns in relations.items():
        listed = rows(section(text, f"`{relation}`"))
        assert [c for c, _ in columns] == list(listed), relation
        for column, dtype in columns:
            assert listed[column][1] == dtype, (relation, column)


def test_every_released_relation_and_column_listed(text):
    con = dictionary._probe_release()
    disclosure.write_released(con, roi.released_tables(con))
    relations = catalog(con, "starts_with(table_name, 'released_')")
    assert {"released_measures", "released_coenrollment_pairs",
            "released_measure_definitions", "released_disclosure_rules",
            "released_program_costs", "released_cost_per_outcome", "released_program_return",
            "released_roi_settings"} <= set(relations)
    assert {f"released_{m}" for m in dictionary.released_measure_specs()} <= set(relations)
    for relation, columns in relations.items():
        listed = rows(section(text, f"`{relation}`"))
        assert [c for c, _ in columns] == list(listed), relation
        for column, dtype in columns:
            assert listed[column][1] == dtype, (relation, column)
            assert listed[column][3], f"{relation}.{column} has no description"
    definitions = rows(section(text, "Measure definitions"))
    for name, spec in dictionary.released_measure_specs().items():
        assert definitions[name][3] == spec.title


def test_ddl_comments_become_column_descriptions(text):
    person = rows(section(text, "`person` (table)"))
    assert person["zip3"][3] == "first three ZIP digits only"
    assert person["sex"][3] == r"F \| M \| X \| NULL"
    assert person["person_id"][2] == "no" and person["birth_year"][2] == "yes"
    profile = rows(section(text, "`person_profile` (table)"))
    # a comment continued on the lines below the column
    assert "two_or_more_races" in profile["race_category"][3]
    assert "deceased" in rows(section(text, "`enrollment` (table)"))[
        "exit_exclusion_reason"][3]
    assert "Outcome cohort" in section(text, "`exit_cohort` (view)")


def test_every_contract_property_listed_with_classification(text):
    for dataset in data_contracts.DATASETS:
        contract = data_contracts.load_contract(dataset)
        listed = rows(section(text, f"`{dataset}` (`{contract.id}`"))
        assert list(listed) == contract.columns, dataset
        for prop in contract.properties:
            cells = listed[prop.name]
            assert cells[1] == prop.logical_type
            assert cells[2] == ("yes" if prop.required else
                                "column" if prop.required_column else "no")
            assert cells[3] == prop.classification
            element = prop.custom.get("pirlElement")
            assert cells[4] == ("" if element is None else str(element))
            if element is not None:
                verified = prop.custom.get("pirlElementVerified")
                assert cells[5] == ("verified" if verified else "unverified")


def test_no_pii_field_listed_as_published(text):
    pii_seen = 0
    for dataset in data_contracts.DATASETS:
        contract = data_contracts.load_contract(dataset)
        listed = rows(section(text, f"`{dataset}` (`{contract.id}`"))
        for field in dictionary.contract_fields(dataset):
            published_cell = listed[field.name][6]
            assert published_cell.startswith("yes" if field.published else "no")
            if field.classification in data_contracts.PII_CLASSIFICATIONS:
                pii_seen += 1
                assert not field.published, (dataset, field.name)
                assert published_cell.startswith("no: PII-classified"), (dataset, field.name)
    assert pii_seen >= 15
    fields = {f.name: f for f in dictionary.contract_fields("enrollments")}
    assert fields["entry_date"].published and "enrollment.entry_month" in fields[
        "entry_date"].warehouse


def test_derivation_targets_exist_in_warehouse():
    con = dictionary.warehouse_connection()
    columns = {f"{t}.{c}" for t, c in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main'"
    ).fetchall()}
    for (dataset, field), derived in dictionary._DERIVED.items():
        assert field in data_contracts.load_contract(dataset).columns, (dataset, field)
        assert set(derived.columns) <= columns, (dataset, field)
    for dataset, tables in dictionary.CONTRACT_TABLES.items():
        assert dataset in data_contracts.DATASETS
        assert all(any(c.startswith(f"{t}.") for c in columns) for t in tables)


def test_committed_dictionary_is_current(text):
    assert COMMITTED.read_text(encoding="utf-8") == text, (
        "docs/data_dictionary.md is stale: run "
        "`.venv/bin/python -m pipelines.warehouse.dictionary docs/data_dictionary.md`")


@pytest.mark.slow  # over ~2 s: left out of `make test-fast`
def test_cli_command_and_module_entry_point(text, tmp_path):
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test app."""

    release.register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["dictionary"])
    assert result.exit_code == 0, result.output
    assert result.stdout == text
    out = tmp_path / "dd.md"
    result = runner.invoke(app, ["dictionary", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == text
    other = tmp_path / "sub" / "dd.md"
    assert dictionary.main([str(other)]) == 0
    assert other.read_text(encoding="utf-8") == text
