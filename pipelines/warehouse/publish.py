"""Build the analyst's warehouse and the evaluators' aggregates-only file, each swapped in
atomically (tiers: :mod:`pipelines.warehouse.tiers`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pipelines.records import PROFILE_COLUMNS, WAGE_MATCH_TOKENS
from pipelines.tables import insert_frame
from pipelines.warehouse import disclosure, measures, roi, tiers
from pipelines.warehouse.aggregate import last_known, mode_first_seen
from pipelines.warehouse.facts import published_facts
from pipelines.workspace import ReleaseSettings, RoiSettings
from schemas import ddl

WAREHOUSE_SCHEMA_VERSION = 3  # 3: published/ holds released_* only; state/warehouse.duckdb

# The participant record columns a release is built from (`PublishInputs.records`): the
# person table's, the reporting profile's and the wage-match tokens; no filters.
RECORD_COLUMNS: tuple[str, ...] = ("record_key", "period", "birth_year", "sex", "zip3",
                                   *PROFILE_COLUMNS, *WAGE_MATCH_TOKENS)


@dataclass(frozen=True)
class PublishInputs:
    """Everything the release is built from (all de-identified or restricted-only keys)."""

    crosswalk: pd.DataFrame  # record_key, partner_id, person_id
    records: pd.DataFrame  # RECORD_COLUMNS of each record's latest version
    record_periods: pd.DataFrame  # record_key, partner_id, first_period, last_period
    partners: dict[str, str]  # partner_id -> display name
    id_history: pd.DataFrame  # run_id, person_id, event, related_person_id, recorded_at
    run_id: str
    periods: list[str]
    code_version: str
    linkage_spec: str  # e.g. pathlink-linkage/5: the spec this run's crosswalk was linked with
    encoding_schema: str  # e.g. pathlink-encoding/3: the encoding of the records it linked
    published_at: datetime  # naive UTC, recorded in the release row
    events: dict[str, pd.DataFrame] = field(default_factory=dict)  # restricted event rows
    small_cell_threshold: int = 10
    # record_key + wage-match tokens under every key a record was encoded under (after a key
    # rotation, wage rows stored under the old key still match); None: use `records`
    match_records: pd.DataFrame | None = None
    # partner_id, dataset, first_period, last_period, periods: accepted files (file ledger)
    datasets_sent: pd.DataFrame | None = None
    release: ReleaseSettings = field(default_factory=ReleaseSettings)  # [release]
    roi: RoiSettings = field(default_factory=RoiSettings)  # [roi]


def person_table(crosswalk: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """One row per person: birth year and sex by majority (ties: the earliest record's), ZIP3
    from the latest record that has one. Records are ordered by period, then record key."""
    columns = ["record_key", "birth_year", "sex", "zip3", "period"]
    joined = crosswalk[["record_key", "person_id"]].merge(
        records.reindex(columns=columns).astype({"record_key": object}), on="record_key"
    )
    if joined.empty:
        return pd.DataFrame(columns=["person_id", "birth_year", "sex", "zip3"])
    joined = joined.sort_values(["person_id", "period", "record_key"], kind="stable")
    person_ids = pd.Index(joined["person_id"].drop_duplicates().sort_values(kind="stable"),
                          name="person_id")
    birth_year = mode_first_seen(joined, "person_id", "birth_year").reindex(person_ids)
    persons = pd.DataFrame({
        "birth_year": pd.to_numeric(birth_year.astype(object).where(birth_year.notna(), None))
        .astype("Int64"),
        "sex": _objects(mode_first_seen(joined, "person_id", "sex").reindex(person_ids)),
        "zip3": _objects(last_known(joined, "person_id", "zip3").reindex(person_ids)),
    }, index=person_ids).reset_index()
    return persons


def _objects(series: pd.Series) -> pd.Series:
    """Object dtype with None for missing (as a per-group Python aggregation gives)."""
    return series.astype(object).where(series.notna(), None)


def participation_table(crosswalk: pd.DataFrame, record_periods: pd.DataFrame) -> pd.DataFrame:
    """One row per person and partner: first and last period seen, and record count."""
    joined = crosswalk[["record_key", "person_id"]].merge(record_periods, on="record_key")
    # Periods are 'YYYY-MM' strings, so their sorted order is the calendar's: take min and max
    # over the codes of the sorted distinct periods (pandas' min and max over strings call
    # Python per group: 12 s of a 100k-record release).
    first, first_values = pd.factorize(joined["first_period"], sort=True)
    last, last_values = pd.factorize(joined["last_period"], sort=True)
    first = np.where(first < 0, len(first_values), first)  # a missing period is never the min
    table = (
        joined.assign(first_period=first, last_period=last)
        .groupby(["person_id", "partner_id"], sort=True)
        .agg(first_period=("first_period", "min"), last_period=("last_period", "max"),
             records=("record_key", "count"))
        .reset_index()
    )
    table["first_period"] = _decode(table["first_period"].to_numpy(), first_values)
    table["last_period"] = _decode(table["last_period"].to_numpy(), last_values)
    return table


def _decode(codes: np.ndarray, values: pd.Index) -> np.ndarray:
    """Codes back to their values (object array); a code outside them is a missing value."""
    lookup = np.append(values.to_numpy(dtype=object), None)
    return lookup[np.where((codes >= 0) & (codes < len(values)), codes, len(values))]


def publish(inputs: PublishInputs, target: Path, *, warehouse: Path) -> dict[str, int]:
    """Write the analyst warehouse (``warehouse``, person-level, restricted) and the published
    file (``target``, ``released_*`` aggregates only), each next to its old version and then
    swapped in: the warehouse first, the published file last.

    Evaluators see either the previous release or this one, never a mix.

    Returns:
        Row counts per table of the warehouse, and ``published:<relation>`` per relation of
        the published file.
    """
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    tmp = warehouse.with_name(f".{warehouse.name}.{inputs.run_id}.tmp")
    tmp.unlink(missing_ok=True)
    persons = person_table(inputs.crosswalk, inputs.records)
    participation = participation_table(inputs.crosswalk, inputs.record_periods)
    partners = pd.DataFrame(
        sorted(inputs.partners.items()), columns=["partner_id", "partner_name"]
    )
    history = inputs.id_history.reindex(
        columns=["run_id", "person_id", "event", "related_person_id", "recorded_at"]
    )
    release = pd.DataFrame(
        [[inputs.run_id, inputs.published_at, ",".join(inputs.periods), inputs.code_version,
          WAREHOUSE_SCHEMA_VERSION, inputs.linkage_spec, inputs.encoding_schema,
          inputs.release.mode]],
        columns=["run_id", "published_at", "periods", "code_version", "schema_version",
                 "linkage_spec", "encoding_schema", "release_mode"],
    )
    con = duckdb.connect(str(tmp))
    try:
        con.execute(ddl("warehouse"))
        for name, frame in (("partner", partners), ("person", persons),
                            ("participation", participation),
                            ("person_id_history", history), ("release", release)):
            insert_frame(con, name, frame)
        measures.create_warehouse_facts(con)
        facts = published_facts(inputs.events, inputs.records, inputs.crosswalk,
                                match_records=inputs.match_records)
        fact_counts = measures.load_facts(con, facts)
        measures.create_warehouse_views(con)
        sent = inputs.datasets_sent if inputs.datasets_sent is not None else pd.DataFrame(
            columns=["partner_id", "dataset", "first_period", "last_period", "periods"])
        released = disclosure.write_released(con, roi.released_tables(
            con, settings=inputs.roi, threshold=inputs.small_cell_threshold,
            datasets_sent=inputs.datasets_sent, mode=inputs.release.mode,
            rho=inputs.release.rho, delta=inputs.release.delta,
            max_units_per_person=inputs.release.max_units_per_person))
        released.update(disclosure.write_released(con, tiers.metadata_tables(
            con, partners=inputs.partners, datasets_sent=sent, periods=inputs.periods)))
        con.execute("CHECKPOINT")
    finally:
        con.close()
    tiers.replace_atomically(tmp, warehouse)
    published = tiers.write_published(warehouse, target, inputs.run_id)
    return {"person": len(persons), "participation": len(participation),
            "partner": len(partners), **fact_counts,
            **{f"released:{k}": v for k, v in released.items()},
            **{f"published:{k}": v for k, v in published.items()}}
