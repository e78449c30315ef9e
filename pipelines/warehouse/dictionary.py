"""Data dictionary for evaluators, generated from the warehouse DDL and the data contracts.

Nothing here is written by hand about columns: the relations, columns, DuckDB types and
nullability come from creating the warehouse in an in-memory DuckDB (``schemas/warehouse.sql``,
then :func:`pipelines.warehouse.measures.create_warehouse_facts` and
:func:`pipelines.warehouse.measures.create_warehouse_views`); column descriptions are the ``--``
comments on the column's line in those DDL files (plus comment-only continuation lines right
below); the ``released_*`` relations are produced by :mod:`pipelines.warehouse.disclosure` on a tiny
probe warehouse (every cell suppressed) so their types are the ones a real release gets; the
contract sections come from :func:`data_contracts.load_contract`.

``docs/data_dictionary.md`` is the committed output; ``tests/unit/test_dictionary.py`` fails when it
drifts. Regenerate with::

    .venv/bin/python -m pipelines.warehouse.dictionary docs/data_dictionary.md
    .venv/bin/pathlink dictionary -o docs/data_dictionary.md
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

import data_contracts
from pipelines.warehouse import disclosure, measures, roi, tiers
from pipelines.workspace import RoiSettings
from schemas import ddl

DDL_FILES: tuple[str, ...] = ("warehouse", "warehouse_facts", "warehouse_views", "warehouse_roi")

# Warehouse tables a contract's accepted rows are published into (pipelines/warehouse/facts.py,
# pipelines/warehouse/publish.py). A non-PII contract field is published when one of these
# tables has a column of the same name, or when it is listed in _DERIVED.
CONTRACT_TABLES: dict[str, tuple[str, ...]] = {
    "participants": ("person", "person_profile"),
    "enrollments": ("enrollment", "program"),
    "services": ("service",),
    "credentials": ("credential",),
    "employment": ("employment",),
    "wages": ("wage",),
    "assessments": ("assessment",),
    "program_costs": ("program_cost",),
}


@dataclass(frozen=True)
class Derivation:
    """How the publisher carries a contract field into the warehouse under another name."""

    columns: tuple[str, ...]  # "<relation>.<column>"
    how: str
    published: bool = True  # False: the field's value itself is not recoverable from it


# Contract fields the publisher renames or coarsens on the way in (pipelines/warehouse/facts.py,
# pipelines/warehouse/publish.py). tests/unit/test_dictionary.py checks every target column exists.
_DERIVED: dict[tuple[str, str], Derivation] = {
    ("participants", "date_of_birth"): Derivation(
        ("person.birth_year", "person_profile.age_band_first_entry"),
        "year of birth only; age band at first enrollment"),
    ("participants", "zip"): Derivation(("person.zip3",), "first three ZIP digits only"),
    ("participants", "sex"): Derivation(("person.sex",), "the F / M / X code, for reporting "
                                                        "groups"),
    ("participants", "race"): Derivation(("person_profile.race_category",),
                                         "one race category, or two_or_more_races"),
    ("participants", "hispanic_latino"): Derivation(("person_profile.hispanic_latino",),
                                                    "yes / no as a boolean"),
    ("enrollments", "program_id"): Derivation(("enrollment.program_id", "program.program_id"),
                                              "as '<partner_id>:<program code>'"),
    ("enrollments", "entry_date"): Derivation(("enrollment.entry_month",), "month precision"),
    ("enrollments", "exit_date"): Derivation(("enrollment.exit_month", "enrollment.exit_quarter"),
                                             "month and quarter precision"),
    ("services", "service_date"): Derivation(("service.service_month",), "month precision"),
    ("credentials", "date_attained"): Derivation(("credential.attained_month",),
                                                 "month precision"),
    ("employment", "start_date"): Derivation(("employment.start_month",), "month precision"),
    ("employment", "end_date"): Derivation(("employment.end_month",), "month precision"),
    ("employment", "naics_sector"): Derivation(("employment.naics_sector",),
                                               "2-digit NAICS sector"),
    ("assessments", "assessment_date"): Derivation(("assessment.assessment_month",),
                                                   "month precision"),
    ("program_costs", "program_id"): Derivation(("program_cost.program_id",),
                                                "as '<partner_id>:<program code>'"),
    ("program_costs", "cost_period"): Derivation(
        ("program_cost.cost_period", "program_cost.cost_quarter"),
        "as sent (YYYY-MM or YYYYQn), plus its quarter"),
    ("program_costs", "cost_amount"): Derivation(("program_cost.amount",), "dollars"),
    ("wages", "employer_id"): Derivation(("wage.employer_key",),
                                         "replaced by an opaque keyed hash", published=False),
}

# Descriptions of the released_* columns (pipelines/warehouse/disclosure.py builds these frames).
RELEASED_COLUMN_NOTES: dict[str, str] = {
    "measure": "Measure name (see Measure definitions below).",
    "dimension": "Reporting dimension: overall, partner, program, sector, funding_stream, "
                 "race_ethnicity, sex, age_band, barrier, or service_type.",
    "group": "Group within the dimension ('all' for overall; 'unknown' when not reported).",
    "period": "'all', or an exit quarter YYYYQn (overall dimension of exit-based measures).",
    "numerator": "Units counted in the numerator; NULL when suppressed.",
    "denominator": "Units in the population (n for medians); NULL when suppressed.",
    "value": "Rate rounded to 3 decimals, or fuzzy median rounded to $10; NULL when "
             "suppressed or shown as <1% / >99% (released_roi_settings: the setting's "
             "value).",
    "display": "The figure as shown: whole percent, <1%, >99%, $ amount, count, or "
               "'suppressed'.",
    "suppressed": "True when the cell is withheld.",
    "suppression_reason": "Why a cell is withheld: 'small cell', 'complementary' (it would "
                          "give a small cell away by subtraction, or holds the same people as "
                          "one) or 'no data sent'; NULL when shown.",
    "partner_id": "Partner id as registered in the workspace.",
    "partner_name": "The partner's display name.",
    "dataset": "Dataset of the partner's accepted files (participants, enrollments, ...).",
    "first_period": "First drop period (YYYY-MM) with an accepted file of the dataset.",
    "last_period": "Last drop period with an accepted file of the dataset.",
    "periods": "Number of periods with an accepted file (released_data_sent); comma-separated "
               "drop periods (released_coverage, released_release).",
    "program_id": "'<partner_id>:<partner program code>'.",
    "program_name": "The partner's program code.",
    "funding_stream": "The program's funding stream (released_program_costs: the cost "
                      "row's).",
    "sector": "The program's sector.",
    "periods_first": "First drop period of the release.",
    "periods_last": "Last drop period of the release.",
    "wage_first_quarter": "First quarter in the UI wage data (YYYYQn).",
    "wage_last_quarter": "Last quarter in the UI wage data.",
    "partner_data_through_month": "Latest month any partner fact refers to.",
    "cohort_exit_from_quarter": "Earliest exit quarter in the outcome cohort.",
    "cohort_exit_through_quarter": "Latest exit quarter in the outcome cohort.",
    "cohort_exit_through_month": "Latest exit month in the outcome cohort.",
    "exits_reported": "'some' or 'none': whether partners reported any exit.",
    "cohort_exits": "'some' or 'none': whether the outcome cohort has any exit.",
    "run_id": "The run that made the release.",
    "published_at": "When the release was written (UTC).",
    "code_version": "Pathlink version that made it.",
    "schema_version": "Warehouse schema version.",
    "linkage_spec": "Linkage spec the persons were linked with.",
    "encoding_schema": "Encoding schema of the linked records.",
    "release_mode": "suppression or dp ([release] mode).",
    "partner_a": "First partner of the pair (partner_a <= partner_b).",
    "partner_b": "Second partner; partner_a = partner_b is the partner's caseload.",
    "persons": "Persons enrolled at both partners; NULL when suppressed.",
    "kind": "rate or median.",
    "unit": "episode (enrollment / exit rows) or person.",
    "title": "Human title of the measure.",
    "description": "Definition of the measure.",
    "additive_dimensions": "Dimensions whose groups add up to the overall cell.",
    "rule": "Disclosure-avoidance rule.",
    "cost_quarter": "Quarter of the cost (YYYYQn); monthly costs are summed into it.",
    "cost_category": "What the cost covers: training, supportive_services or staff.",
    "amount": "Dollars spent (sum of the rows sent; negative rows are corrections).",
    "sent_as": "'quarter' when the partner sent the quarter as one period, else 'month'.",
    "quarter_complete": "True when the quarter was sent whole or as all three months: only "
                        "complete quarters enter cost per outcome.",
    "outcome": "participant, completer, credential or employed_q2: what the cost is divided "
               "by.",
    "window_first_quarter": "First quarter of the cost window (complete cost quarters whose "
                            "exits are all measurable).",
    "window_last_quarter": "Last quarter of the cost window.",
    "window_quarters": "Quarters in the cost window.",
    "cost": "Costs in the window (dollars; no person data, shown even when the figure is "
            "suppressed); NULL when no costs fall in measured quarters.",
    "units": "Participants, completers, credentials or employed exits (Q2) in the window; "
             "NULL when suppressed.",
    "cost_per_unit": "cost / units rounded to the dollar; NULL when suppressed.",
    "median_earnings_change": "The program's released median earnings change (fuzzy median, "
                              "dollars over the after window minus the before window).",
    "gain_per_year": "median_earnings_change x 4 / window quarters.",
    "horizon_years": "Years the gain is counted for ([roi] horizon_years).",
    "discount_rate": "Yearly discount rate ([roi] discount_rate).",
    "present_value_gain": "gain_per_year x sum over t = 1..horizon of (1 + rate)^-t.",
    "cost_per_participant": "The program's released cost per participant.",
    "return_ratio": "present_value_gain / cost_per_participant (2 decimals); NULL when either "
                    "is suppressed.",
    "setting": "Its setting in this release.",
}
RELEASED_TABLE_NOTES: dict[str, str] = {
    "released_measures": "Every measure by dimension, group and period, after suppression "
                         "(tidy form).",
    "released_coenrollment_pairs": "Persons enrolled at both partners, for every partner pair "
                                   "(the diagonal is the caseload), after suppression.",
    "released_measure_definitions": "One row per measure: how it is computed.",
    "released_disclosure_rules": "The disclosure-avoidance settings the release was made "
                                 "with.",
    "released_partners": "Registered partners and their display names.",
    "released_data_sent": "Which datasets each partner sent, and for which periods (accepted "
                          "files; never row counts).",
    "released_programs": "The program dimension: one row per partner program.",
    "released_coverage": "What the release covers: drop periods, wage quarters, partner data "
                         "months and the outcome cohort's exit window.",
    "released_program_costs": "What each program spent, by quarter, funding stream and "
                              "category (program level only; no person data).",
    "released_cost_per_outcome": "Cost per participant, completer, credential and employed "
                                 "exit (Q2) by overall, partner, program and funding stream, "
                                 "over each program's cost window; no figure where its count "
                                 "is suppressed (docs/warehouse.md, \"Return on investment\").",
    "released_program_return": "Per program: the median earnings gain over the horizon, "
                               "discounted, divided by the cost per participant; a "
                               "before/after figure, not an effect.",
    "released_roi_settings": "The earnings windows, cost window, horizon, discount rate and "
                             "the return formula this release was made with.",
    "released_release": "The release's provenance: run, time, periods, code, schema, linkage "
                        "spec, encoding, mode.",
}

_CREATE = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(TABLE|VIEW|MACRO)\s+(\w+)",
                     re.IGNORECASE)
_NOT_COLUMNS = frozenset({"check", "primary", "unique", "foreign", "constraint"})
_IDENT = re.compile(r"[A-Za-z_]\w*")


@dataclass
class RelationDoc:
    """A relation found in a DDL file, with the comments that describe it."""

    name: str
    kind: str  # "table" | "view"
    source: str  # DDL file name
    description: str
    column_notes: dict[str, str]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    description: str


@dataclass(frozen=True)
class ContractField:
    """One contract property as the dictionary lists it."""

    dataset: str
    name: str
    logical_type: str
    required: bool
    classification: str
    pirl_element: str
    pirl_verified: bool | None
    description: str
    published: bool
    warehouse: str  # where (and how) the warehouse carries it, or why not
    required_column: bool = False

    @property
    def required_label(self) -> str:
        """`yes` (a value in every row), `column` (the header must hold it; a value may be
        empty) or `no`."""
        return "yes" if self.required else "column" if self.required_column else "no"


# ---- DDL comments -------------------------------------------------------------------------

def _split_comment(line: str) -> tuple[str, str | None]:
    """Code and trailing ``--`` comment of one SQL line (ignoring ``--`` inside quotes)."""
    quoted = False
    for i, char in enumerate(line):
        if char == "'":
            quoted = not quoted
        elif not quoted and line.startswith("--", i):
            return line[:i], line[i + 2:].strip()
    return line, None


def _clean_block(lines: Iterable[str]) -> str:
    parts = []
    for text in lines:
        if text.startswith("--"):  # section rule such as "-- ---- data coverage ------"
            heading = text.strip("- ").strip()
            if heading:
                heading = heading[0].upper() + heading[1:]
                parts.append(heading if heading[-1] in ".:;" else heading + ".")
        elif text:
            parts.append(text)
    return " ".join(parts)


def _column_of(code: str, kind: str) -> str | None:
    code = code.strip().rstrip(",").strip()
    if not code:
        return None
    if kind == "table":
        match = _IDENT.match(code)
        if match and match.group(0).lower() not in _NOT_COLUMNS:
            return match.group(0)
        return None
    alias = re.search(r"\bAS\s+(\w+)\s*$", code, re.IGNORECASE)
    if alias:
        return alias.group(1)
    names = _IDENT.findall(code)
    return names[-1] if names else None


def parse_ddl(name: str) -> list[RelationDoc]:
    """Relations created by one DDL file, with their comment descriptions.

    A relation's description is the comment block right above its CREATE (section rules such
    as ``-- ---- services ----`` become a heading sentence); a column's description is the
    trailing comment on its line, continued by comment-only lines directly below it.
    """
    relations: list[RelationDoc] = []
    pending: list[str] = []
    current: RelationDoc | None = None
    last_column: str | None = None
    for line in ddl(name).splitlines():
        code, comment = _split_comment(line)
        if not code.strip():
            if comment is None:  # blank line
                pending = []
                last_column = None
                continue
            if current is not None and last_column is not None and line[:1].isspace():
                notes = current.column_notes
                notes[last_column] = f"{notes[last_column]} {comment}".strip()
                continue
            pending.append(comment)
            continue
        create = _CREATE.match(code)
        if create:
            kind = create.group(1).lower()
            current = None
            if kind != "macro":
                current = RelationDoc(create.group(2), kind, f"{name}.sql", _clean_block(pending),
                                      {})
                relations.append(current)
            pending = []
            last_column = None
            continue
        pending = []
        last_column = None
        if current is not None and comment:
            column = _column_of(code, current.kind)
            if column:
                current.column_notes[column] = comment
                last_column = column
        if code.rstrip().endswith(";"):
            current = None
    return relations


# ---- warehouse ----------------------------------------------------------------------------

def warehouse_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every warehouse table and view (no rows)."""
    con = duckdb.connect()
    con.execute(ddl("warehouse"))
    measures.create_warehouse_facts(con)
    measures.create_warehouse_views(con)
    roi.create_roi_views(con, RoiSettings())
    return con


def _relation_kinds(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    kinds = {name: "table" for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT internal AND schema_name = 'main'"
    ).fetchall()}
    kinds.update({name: "view" for (name,) in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'"
    ).fetchall()})
    return kinds


def _columns(con: duckdb.DuckDBPyConnection, relation: str,
             notes: dict[str, str]) -> list[Column]:
    rows = con.execute(
        "SELECT column_name, data_type, is_nullable FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND table_name = ? ORDER BY column_index", [relation]
    ).fetchall()
    return [Column(name, str(dtype), bool(nullable), notes.get(name, ""))
            for name, dtype, nullable in rows]


def warehouse_relations() -> list[tuple[RelationDoc, list[Column]]]:
    """Every table and view of the three DDL files, in file order, with DuckDB's columns."""
    con = warehouse_connection()
    try:
        kinds = _relation_kinds(con)
        out: list[tuple[RelationDoc, list[Column]]] = []
        seen: set[str] = set()
        for name in DDL_FILES:
            for doc in parse_ddl(name):
                if doc.name in seen or doc.name not in kinds:
                    continue
                seen.add(doc.name)
                out.append((doc, _columns(con, doc.name, doc.column_notes)))
        for name in sorted(set(kinds) - seen):  # created some other way (none today)
            doc = RelationDoc(name, kinds[name], "", "", {})
            out.append((doc, _columns(con, name, {})))
        return out
    finally:
        con.close()


def _probe_release() -> duckdb.DuckDBPyConnection:
    """A warehouse with one person's facts and its released_* relations (all suppressed)."""
    con = warehouse_connection()
    con.execute("INSERT INTO person VALUES ('probe', 1990, 'F', '061')")
    measures.load_facts(con, {
        "enrollment": pd.DataFrame([{
            "person_id": "probe", "partner_id": "probe", "program_id": "probe:p",
            "funding_stream": "wioa_adult", "entry_month": "2024-01", "exit_month": "2024-03",
            "exit_quarter": "2024Q1", "in_education_or_training": True}]),
        "service": pd.DataFrame([{"person_id": "probe", "partner_id": "probe",
                                  "service_month": "2024-02",
                                  "service_type": "supportive_service"}]),
        "wage": pd.DataFrame([{"person_id": "probe", "year_quarter": "2025Q1",
                               "employer_key": "probe", "wages": 1.0}]),
        "program_cost": pd.DataFrame([{
            "partner_id": "probe", "program_id": "probe:p", "cost_period": "2024Q1",
            "cost_quarter": "2024Q1", "funding_stream": "wioa_adult",
            "cost_category": "staff", "amount": 1.0}]),
    })
    return con


def released_measure_specs() -> dict[str, measures.MeasureSpec]:
    """Every released measure: :data:`measures.MEASURES` and the earnings change
    (:func:`pipelines.warehouse.roi.earnings_specs`, default window)."""
    return {**measures.MEASURES, **roi.earnings_specs()}


def released_relations() -> tuple[list[tuple[str, str, list[Column]]], pd.DataFrame,
                                  pd.DataFrame]:
    """``released_*`` relations as :mod:`pipelines.warehouse.disclosure` writes them.

    Returns:
        (name, kind, columns) per relation (tables first, then the per-measure views), the
        measure definitions and the default disclosure rules.
    """
    con = _probe_release()
    try:
        written = list(disclosure.write_released(con, roi.released_tables(con)))
        written += list(disclosure.write_released(con, tiers.metadata_tables(
            con, partners={"probe": "Probe partner"}, periods=["2024-03"],
            datasets_sent=pd.DataFrame([("probe", "enrollments", "2024-03", "2024-03", 1)],
                                       columns=["partner_id", "dataset", "first_period",
                                                "last_period", "periods"]))))
        kinds = _relation_kinds(con)
        names = [n for n in disclosure.released_relations(con) if n in kinds]
        tables = [n for n in written if kinds.get(n) == "table"]
        tables += sorted(n for n in names if kinds[n] == "table" and n not in tables)
        views = [f"{disclosure.RELEASED_PREFIX}{m}" for m in released_measure_specs()
                 if f"{disclosure.RELEASED_PREFIX}{m}" in kinds]
        views += sorted(n for n in names if kinds[n] == "view" and n not in views)
        out = [(n, kinds[n], _columns(con, n, RELEASED_COLUMN_NOTES)) for n in tables + views]
        definitions = con.execute(
            "SELECT * FROM released_measure_definitions ORDER BY rowid").df()
        rules = con.execute("SELECT * FROM released_disclosure_rules ORDER BY rowid").df()
        return out, definitions, rules
    finally:
        con.close()


# ---- contracts ----------------------------------------------------------------------------

def _warehouse_columns() -> dict[str, set[str]]:
    con = warehouse_connection()
    try:
        rows = con.execute("SELECT table_name, column_name FROM duckdb_columns() "
                           "WHERE schema_name = 'main'").fetchall()
    finally:
        con.close()
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(table, set()).add(column)
    return columns


def contract_fields(dataset: str,
                    warehouse: dict[str, set[str]] | None = None) -> list[ContractField]:
    """The properties of one contract, with whether (and where) each is published."""
    contract = data_contracts.load_contract(dataset)
    warehouse = warehouse if warehouse is not None else _warehouse_columns()
    fields = []
    for prop in contract.properties:
        derived = _DERIVED.get((dataset, prop.name))
        same_name = [f"{t}.{prop.name}" for t in CONTRACT_TABLES.get(dataset, ())
                     if prop.name in warehouse.get(t, set())]
        targets = ", ".join(f"`{c}`" for c in (derived.columns if derived else same_name))
        if prop.is_pii:
            published = False
            where = f"no: PII-classified ({prop.classification}) fields are never published"
            if derived:
                where += f"; the warehouse keeps only {targets} ({derived.how})"
        elif derived and derived.published:
            published, where = True, f"yes: {targets} ({derived.how})"
        elif derived:
            published, where = False, f"no: {derived.how}, {targets}"
        elif same_name:
            published, where = True, f"yes: {targets}"
        else:
            published, where = False, "no"
        element = prop.custom.get("pirlElement")
        verified = prop.custom.get("pirlElementVerified")
        fields.append(ContractField(
            dataset=dataset, name=prop.name, logical_type=prop.logical_type,
            required=prop.required, required_column=prop.required_column,
            classification=prop.classification,
            pirl_element="" if element is None else str(element),
            pirl_verified=None if element is None else bool(verified),
            description=" ".join(prop.description.split()),
            published=published, warehouse=where))
    return fields


# ---- Markdown -----------------------------------------------------------------------------

def _cell(text: object) -> str:
    value = " ".join(str(text).split())
    for char in ("\\", "|", "*", "<", ">"):
        value = value.replace(char, "\\" + char)
    return value


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _column_table(columns: Sequence[Column]) -> list[str]:
    return _table(["column", "type", "nullable", "description"],
                  [(f"`{c.name}`", c.type, _yes(c.nullable), c.description) for c in columns])


def build_dictionary() -> str:
    """The whole data dictionary as Markdown (deterministic)."""
    out: list[str] = [
        "# Pathlink data dictionary",
        "",
        "<!-- Generated by `python -m pipelines.warehouse.dictionary docs/data_dictionary.md` "
        "(or `pathlink dictionary -o docs/data_dictionary.md`). Do not edit by hand: "
        "tests/unit/test_dictionary.py fails when this file differs from the generator. -->",
        "",
        "Generated from the warehouse DDL (`schemas/warehouse.sql`, "
        "`schemas/warehouse_facts.sql`, `schemas/warehouse_views.sql`, created in DuckDB), "
        "`pipelines/warehouse/disclosure.py` (the `released_*` relations) and the data contracts "
        "(`data_contracts/*.yaml`). Types and nullability are DuckDB's; descriptions are the "
        "comments in the DDL. Views and `released_*` tables never declare NOT NULL, so DuckDB "
        "reports all their columns as nullable.",
        "",
        "**Who can read what.** The published file (`published/pathlink.duckdb`) holds only "
        "the `released_*` relations (aggregates and descriptions; `pathlink query`, "
        "`pathlink export`, the report). The warehouse tables and views below are "
        "person-level (pseudonymous `person_id`, month-precision dates) and live in the "
        "analyst's `state/warehouse.duckdb`; researchers get person-level data only as a "
        "k-anonymous extract under an agreement (`pathlink extract`). See "
        "`docs/warehouse.md`.",
        "",
        "## Warehouse tables and views",
        "",
    ]
    relations = warehouse_relations()
    for name in DDL_FILES:
        group = [(doc, cols) for doc, cols in relations if doc.source == f"{name}.sql"]
        if not group:
            continue
        out += [f"### From `schemas/{name}.sql`", ""]
        for doc, columns in group:
            out += [f"#### `{doc.name}` ({doc.kind})", ""]
            if doc.description:
                out += [_cell(doc.description), ""]
            out += [*_column_table(columns), ""]
    others = [(doc, cols) for doc, cols in relations if not doc.source]
    if others:
        out += ["### Other relations", ""]
        for doc, columns in others:
            out += [f"#### `{doc.name}` ({doc.kind})", "", *_column_table(columns), ""]

    released, definitions, rules = released_relations()
    out += [
        "## Released relations (evaluators)",
        "",
        "Written by `pipelines.warehouse.disclosure.publish_outcomes` and "
        "`pipelines.warehouse.tiers.metadata_tables`, copied to the published file by "
        "`pipelines.warehouse.tiers.write_published`. Suppressed cells carry NULL "
        "numerator, denominator and value, `display = 'suppressed'`, `suppressed = true` and "
        "a `suppression_reason`. "
        f"Each `{disclosure.RELEASED_PREFIX}<measure>` view holds the rows of "
        "`released_measures` for one measure.",
        "",
    ]
    for name, kind, columns in released:
        out += [f"### `{name}` ({kind})", ""]
        note = RELEASED_TABLE_NOTES.get(name)
        if note is None and name.startswith(disclosure.RELEASED_PREFIX):
            measure = name[len(disclosure.RELEASED_PREFIX):]
            if measure in released_measure_specs():
                note = f"Rows of `released_measures` for `{measure}`."
        if note:
            out += [note, ""]
        out += [*_column_table(columns), ""]
    out += ["### Measure definitions", ""]
    out += _table(list(definitions.columns),
                  [[f"`{v}`" if i == 0 else v for i, v in enumerate(row)]
                   for row in definitions.itertuples(index=False)])
    out += ["", f"### Disclosure rules (defaults; threshold {disclosure.DEFAULT_SMALL_CELL} "
                "unless `[thresholds] small_cell` is set)", ""]
    out += _table(list(rules.columns), [list(row) for row in rules.itertuples(index=False)])
    out += [""]

    warehouse = _warehouse_columns()
    out += [
        "## Data contracts",
        "",
        "What partners drop (`data_contracts/<dataset>.yaml`). **Published** says whether the "
        "field's value reaches the person-level warehouse tables, and where (evaluators see "
        "it only through the `released_*` aggregates). PII-classified fields (`pii-direct`, "
        "`pii-quasi`) are never published: they serve only record linkage (as keyed tokens "
        "and Bloom-filter encodings) and stay in the restricted state; where the warehouse "
        "keeps a reporting-level derivative, the row names it.",
        "",
    ]
    for dataset in data_contracts.DATASETS:
        contract = data_contracts.load_contract(dataset)
        out += [f"### `{dataset}` (`{contract.id}`, version {contract.version}, "
                f"{contract.status})", ""]
        if contract.description:
            out += [_cell(contract.description), ""]
        rows = []
        for f in contract_fields(dataset, warehouse):
            verified = ("" if f.pirl_verified is None
                        else ("verified" if f.pirl_verified else "unverified"))
            rows.append((f"`{f.name}`", f.logical_type, f.required_label, f.classification,
                         f.pirl_element, verified, f.warehouse, f.description))
        out += _table(["property", "logicalType", "required", "classification", "PIRL element",
                       "PIRL status", "published", "description"], rows)
        out += [""]
    return "\n".join(out).rstrip("\n") + "\n"


def write_dictionary(path: str | Path) -> Path:
    """Write :func:`build_dictionary` to ``path`` (UTF-8, ``\\n`` line ends)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(build_dictionary(), encoding="utf-8", newline="\n")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or (args and args[0] in {"-h", "--help"}):
        sys.stderr.write("usage: python -m pipelines.warehouse.dictionary [OUTPUT.md]\n")
        return 2
    if args:
        write_dictionary(args[0])
    else:
        sys.stdout.write(build_dictionary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
