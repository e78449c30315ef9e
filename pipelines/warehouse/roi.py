"""Return on investment (issue 19): earnings before and after, cost per outcome, a return figure.

Three parts, all computed in the analyst warehouse from ``schemas/warehouse_roi.sql``:

* **Earnings change** (:func:`earnings_specs`): for each exit of the outcome cohort whose
  windows are in the wage data, total UI wages in the ``pre_quarters`` quarters before the
  entry quarter and in quarters ``post_first``-``post_last`` after the exit quarter (``[roi]``
  in ``pathlink.toml``; 4 and 2-5 by default). Four measures (median change, share with higher
  earnings, median before, median after) join ``released_measures`` like every other measure:
  every dimension, by exit quarter, one suppression family (they share their exits), fuzzy
  medians, or the DP mode's noisy figures. A before/after change, not an effect: there is no
  comparison group.
* **Cost per outcome** (:func:`cost_per_outcome`): a program's costs over its *window* (its
  complete cost quarters whose exits are all measurable) divided by its participants (enrollments
  active in the window), completers (cohort exits in the window), credentials and employed
  exits (Q2) among those completers; by program, partner, funding stream and overall. The
  counts behind each figure are suppressed like released counts (:data:`COUNT_SPECS`, with the
  programs of a partner adding up to the partner), and a figure whose count is suppressed in
  ``released_measures`` (or could be told apart from it by subtraction) is suppressed too: a
  program whose counts are suppressed gets no cost-per-outcome figure, since cost / figure
  would give the count back.
* **Return** (:func:`program_return`): per program, the released median earnings change (per
  year) times the present value of one dollar a year over ``horizon_years`` at
  ``discount_rate``, divided by the released cost per participant. Computed from released
  figures only, so it discloses nothing they do not.

Released relations: ``released_program_costs`` (program level; no person data),
``released_cost_per_outcome``, ``released_program_return``, ``released_roi_settings``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import duckdb
import pandas as pd

from pipelines.warehouse import disclosure
from pipelines.warehouse.measures import (
    ALL,
    DIMENSIONS,
    MEASURES,
    MeasureSpec,
    cell_signatures,
    compute_measures,
    views_materialized,
)
from pipelines.workspace import RoiSettings
from schemas import ddl

ROI_DIMENSIONS = ("overall", "partner", "program", "funding_stream")
#: Dimensions whose groups add up to the overall cell for exit-based measures (as
#: ``measures._EPISODE_ADDITIVE``).
EPISODE_ADDITIVE = ("overall", "partner", "program", "sector", "funding_stream",
                    "race_ethnicity", "sex", "age_band")
#: What each cost-per-outcome figure divides by: outcome -> (count measure, its part).
OUTCOMES: dict[str, tuple[str, str]] = {
    "participant": ("roi_participants", "denominator"),
    "completer": ("roi_completers", "denominator"),
    "credential": ("roi_credentials", "numerator"),
    "employed_q2": ("roi_employed_q2", "numerator"),
}
OUTCOME_TITLES = {"participant": "Cost per participant", "completer": "Cost per completer",
                  "credential": "Cost per credential",
                  "employed_q2": "Cost per employed exit (Q2)"}

#: The counts behind cost per outcome, suppressed like released counts (internal; the counts
#: themselves are released as ``units`` of ``released_cost_per_outcome``). Rates protect the
#: complement: completers who were not employed (or got no credential) are a count too.
COUNT_SPECS: dict[str, MeasureSpec] = {
    spec.name: spec
    for spec in (
        MeasureSpec("roi_participants", "count", "roi_enrollment", family="roi_participants",
                    dimensions=ROI_DIMENSIONS, additive_dimensions=ROI_DIMENSIONS,
                    title="Participants in the cost window",
                    description="Enrollments active in at least one quarter of their "
                                "program's cost window."),
        MeasureSpec("roi_completers", "count", "roi_enrollment", where="completer",
                    family="roi_completers", dimensions=ROI_DIMENSIONS,
                    additive_dimensions=ROI_DIMENSIONS,
                    title="Completers in the cost window",
                    description="Cohort exits (no exclusion reason) in a quarter of their "
                                "program's cost window."),
        MeasureSpec("roi_credentials", "rate", "roi_enrollment", flag="credential",
                    where="completer", family="roi_credentials", dimensions=ROI_DIMENSIONS,
                    additive_dimensions=ROI_DIMENSIONS,
                    title="Credentials among completers in the cost window",
                    description="Completers in education or training with a credential "
                                "within a year of exit / completers."),
        MeasureSpec("roi_employed_q2", "rate", "roi_enrollment", flag="employed_q2",
                    where="completer", family="roi_employed_q2", dimensions=ROI_DIMENSIONS,
                    additive_dimensions=ROI_DIMENSIONS,
                    title="Employed in Q2 among completers in the cost window",
                    description="Completers with UI wages in the 2nd quarter after exit / "
                                "completers."),
    )
}
#: The released cells holding the same kind of units over the whole cohort: ROI count ->
#: ((measure, part) of the numerator or None, (measure, part) of the denominator). The count
#: outside the window is the difference, so it must pass the small-cell rules too.
NESTED: dict[str, tuple[tuple[str, str] | None, tuple[str, str]]] = {
    "roi_participants": (None, ("supportive_services", "denominator")),
    "roi_completers": (None, ("employment_q2", "denominator")),
    "roi_credentials": (("credential_attainment", "numerator"),
                        ("employment_q2", "denominator")),
    "roi_employed_q2": (("employment_q2", "numerator"), ("employment_q2", "denominator")),
}
NO_COST_DATA = "no cost data for measured quarters"
NO_UNITS = "no participants in measured quarters"

Key = tuple[str, str, str]


# ---- views ----------------------------------------------------------------------------

def create_roi_views(con: duckdb.DuckDBPyConnection, settings: RoiSettings) -> None:
    """The window macros from ``settings``, then the views of ``schemas/warehouse_roi.sql``
    (after ``create_warehouse_views``)."""
    con.execute(f"CREATE OR REPLACE MACRO roi_pre_quarters() AS {int(settings.pre_quarters)}")
    con.execute(f"CREATE OR REPLACE MACRO roi_post_first() AS {int(settings.post_first)}")
    con.execute(f"CREATE OR REPLACE MACRO roi_post_last() AS {int(settings.post_last)}")
    con.execute(ddl("warehouse_roi"))


# ---- earnings change ------------------------------------------------------------------

def earnings_specs(settings: RoiSettings | None = None) -> dict[str, MeasureSpec]:
    """The earnings-change measures, described with the configured window."""
    s = settings or RoiSettings()
    before = f"the {s.pre_quarters} quarters before the entry quarter"
    after = f"quarters {s.post_first} to {s.post_last} after the exit quarter"
    cohort = ("cohort exits whose quarters before entry and after exit are all in the UI wage "
              "data (a quarter without wages counts as $0)")
    common: dict[str, Any] = {"source": "outcome_earnings_change", "family": "earnings_change",
                              "by_period": True, "additive_dimensions": EPISODE_ADDITIVE}
    return {
        spec.name: spec
        for spec in (
            MeasureSpec(
                "earnings_change_median", "median", value="earnings_change",
                title="Median change in earnings, before entry to after exit",
                description=f"Median over {cohort} of total UI wages in {after} minus total "
                            f"UI wages in {before}; a before/after change, not the program's "
                            "effect (no comparison group). Released as a fuzzy median.",
                **common),
            MeasureSpec(
                "earnings_higher_share", "rate", flag="earnings_higher",
                title="Exits earning more after exit than before entry",
                description=f"Exits with higher total UI wages in {after} than in {before} / "
                            f"{cohort}.", **common),
            MeasureSpec(
                "earnings_before_median", "median", value="earnings_before",
                title="Median earnings before entry",
                description=f"Median over {cohort} of total UI wages in {before} (fuzzy "
                            "median).", **common),
            MeasureSpec(
                "earnings_after_median", "median", value="earnings_after",
                title="Median earnings after exit",
                description=f"Median over {cohort} of total UI wages in {after} (fuzzy "
                            "median).", **common),
        )
    }


# ---- cost per outcome -----------------------------------------------------------------

def roi_counts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The unsuppressed counts behind cost per outcome (tidy, :data:`COUNT_SPECS`)."""
    return compute_measures(con, dimensions=ROI_DIMENSIONS, specs=COUNT_SPECS)


def window_costs(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """``dimension, group, cost, first_qi, last_qi, quarters``: costs inside the programs'
    windows by overall, partner, program and funding stream (of the cost row)."""
    return con.execute(
        """
        SELECT CASE WHEN GROUPING(partner_id) = 0 THEN 'partner'
                    WHEN GROUPING(program_id) = 0 THEN 'program'
                    WHEN GROUPING(funding_stream) = 0 THEN 'funding_stream'
                    ELSE 'overall' END AS dimension,
               coalesce(partner_id, program_id, funding_stream, 'all') AS "group",
               sum(amount)::DOUBLE AS cost, min(qi) AS first_qi, max(qi) AS last_qi,
               count(DISTINCT qi) AS quarters
        FROM roi_cost
        GROUP BY GROUPING SETS ((), (partner_id), (program_id), (funding_stream))
        """).df()


def _nested_forced(counts: pd.DataFrame, released: pd.DataFrame,
                   threshold: int) -> set[tuple[str, Key]]:
    """ROI count cells to suppress because of the released cells they are nested in: the
    released cell is suppressed (its count could come back as cost / figure), or the units
    outside the window (released minus window) would fail the small-cell rules."""
    published = {}
    hidden = set()
    for r in released.itertuples(index=False):
        key = (r.measure, r.dimension, r.group, r.period)
        if r.suppressed:
            hidden.add(key)
        else:
            published[key] = r
    forced: set[tuple[str, Key]] = set()
    for r in counts.itertuples(index=False):
        if r.measure not in NESTED:
            continue
        num_link, den_link = NESTED[r.measure]
        links = [link for link in (num_link, den_link) if link is not None]
        cell = (r.dimension, r.group, r.period)
        keys = [(m, *cell) for m, _part in links]
        if any(k in hidden for k in keys):
            forced.add((r.measure, cell))
            continue
        if not all(k in published for k in keys):
            continue  # not released at all: nothing to subtract from
        outer_den = getattr(published[(den_link[0], *cell)], den_link[1])
        inner_den = r.denominator
        if pd.isna(outer_den) or pd.isna(inner_den):
            continue
        outside_den = int(outer_den) - int(inner_den)
        if outside_den == 0:
            continue
        if outside_den < threshold:
            forced.add((r.measure, cell))
            continue
        if num_link is not None:
            outer_num = getattr(published[(num_link[0], *cell)], num_link[1])
            if pd.isna(outer_num) or pd.isna(r.numerator):
                continue
            outside_num = int(outer_num) - int(r.numerator)
            if (outside_num < threshold or outside_den - outside_num < threshold):
                forced.add((r.measure, cell))
    return forced


def few_person_cells(con: duckdb.DuckDBPyConnection, specs: Mapping[str, MeasureSpec],
                     threshold: int, dimensions: Iterable[str]) -> set[tuple[str, Key]]:
    """Cells that count enough units (exits, enrollments) but fewer than ``threshold``
    distinct persons (one person exiting a program twice counts twice as a unit): their
    numerator or denominator in persons, counted like the cell itself."""
    # one measure per family is enough: a family's cells are suppressed together
    by_family: dict[str, MeasureSpec] = {}
    for name, spec in specs.items():
        current = by_family.get(spec.family or name)
        if current is None or (spec.kind == "rate" and current.kind != "rate"):
            by_family[spec.family or name] = spec
    by_person = {spec.name: replace(spec, unit="person") for spec in by_family.values()}
    tidy = compute_measures(con, dimensions=dimensions, specs=by_person)
    out: set[tuple[str, Key]] = set()
    for r in tidy.itertuples(index=False):
        den, num = r.denominator, r.numerator
        kind = specs[r.measure].kind
        few_den = not pd.isna(den) and 0 < int(den) < threshold
        few_num = kind == "rate" and not pd.isna(num) and 0 < int(num) < threshold
        if few_den or few_num:
            out.add((r.measure, (r.dimension, r.group, r.period)))
    return out


def suppress_counts(counts: pd.DataFrame, released: pd.DataFrame, *, threshold: int,
                    programs: Mapping[str, str],
                    signatures: pd.DataFrame | None = None,
                    few_persons: Iterable[tuple[str, Key]] = ()) -> pd.DataFrame:
    """Suppress the ROI counts: small cells, the complement of each rate, cells nested in a
    suppressed or nearly equal released cell (:func:`_nested_forced`), cells of too few
    persons (:func:`few_person_cells`), then complementary suppression along every line, the
    programs of a partner adding up to the partner."""
    return disclosure.suppress_measures(
        counts, threshold=threshold, specs=COUNT_SPECS,
        forced=_nested_forced(counts, released, threshold) | set(few_persons),
        hierarchy={"program": ("partner", dict(programs))},
        signatures=signatures)


def cost_per_outcome(costs: pd.DataFrame, counts: pd.DataFrame, *,
                     groups: Mapping[str, list[str]],
                     no_costs_sent: Mapping[str, set[str]] | None = None,
                     programs: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The released cost-per-outcome rows.

    Args:
        costs: :func:`window_costs`.
        counts: The released ROI counts (:func:`suppress_counts`, or the DP mode's noisy
            ones): ``suppressed``, ``suppression_reason``, figures NULL when suppressed.
        groups: dimension -> every group to report (programs and partners without a window
            get a row that says why there is no figure).
        no_costs_sent: ``{"partner": partners}`` that sent no program_costs file at all.
        programs: program_id -> partner_id.

    Returns:
        ``dimension, group, outcome, window_first_quarter, window_last_quarter,
        window_quarters, cost, units, cost_per_unit, display, suppressed, suppression_reason``.
    """
    unsent = (no_costs_sent or {}).get("partner", set())
    programs = programs or {}
    cost_of = {(r.dimension, r.group): r for r in costs.itertuples(index=False)}
    cell_of = {(r.measure, r.dimension, r.group): r for r in counts.itertuples(index=False)
               if r.period == ALL}
    rows = []
    for dimension in ROI_DIMENSIONS:
        for group in groups.get(dimension, []):
            cost = cost_of.get((dimension, group))
            partner = group if dimension == "partner" else (
                programs.get(group, str(group).split(":", 1)[0]) if dimension == "program"
                else None)
            for outcome, (measure, part) in OUTCOMES.items():
                row = {"dimension": dimension, "group": group, "outcome": outcome,
                       "window_first_quarter": None, "window_last_quarter": None,
                       "window_quarters": None, "cost": None, "units": None,
                       "cost_per_unit": None, "display": disclosure.SUPPRESSED,
                       "suppressed": True, "suppression_reason": None}
                cell = cell_of.get((measure, dimension, group))
                if cost is None or cost.cost is None or pd.isna(cost.cost) or cost.cost <= 0:
                    row["suppression_reason"] = (disclosure.REASONS["no_data"]
                                                 if partner is not None and partner in unsent
                                                 else NO_COST_DATA)
                    rows.append(row)
                    continue
                row.update(window_first_quarter=_quarter_label(cost.first_qi),
                           window_last_quarter=_quarter_label(cost.last_qi),
                           window_quarters=int(cost.quarters), cost=round(float(cost.cost), 2))
                if cell is None:
                    row["suppression_reason"] = NO_UNITS
                    rows.append(row)
                    continue
                units = getattr(cell, part)
                if cell.suppressed or pd.isna(units) or int(units) <= 0:
                    reason = cell.suppression_reason
                    row["suppression_reason"] = (disclosure.REASONS["primary"]
                                                 if reason is None or pd.isna(reason)
                                                 else reason)
                    rows.append(row)
                    continue
                per_unit = float(cost.cost) / int(units)
                row.update(units=int(units), cost_per_unit=float(round(per_unit)),
                           display=f"${per_unit:,.0f}", suppressed=False)
                rows.append(row)
    frame = pd.DataFrame(rows, columns=[
        "dimension", "group", "outcome", "window_first_quarter", "window_last_quarter",
        "window_quarters", "cost", "units", "cost_per_unit", "display", "suppressed",
        "suppression_reason"])
    return frame.astype({"window_quarters": "Int64", "units": "Int64", "cost": "Float64",
                         "cost_per_unit": "Float64", "suppressed": bool})


def _quarter_label(qi: object) -> str | None:
    if qi is None or pd.isna(qi):
        return None
    qi = int(qi)
    return f"{qi // 4}Q{qi % 4 + 1}"


# ---- the return figure ----------------------------------------------------------------

def annuity_factor(horizon_years: int, discount_rate: float) -> float:
    """Present value of $1 a year at the end of each of ``horizon_years`` years:
    sum over t = 1..H of 1 / (1 + r)^t."""
    return float(sum((1.0 + discount_rate) ** -t for t in range(1, int(horizon_years) + 1)))


def program_return(released_measures: pd.DataFrame, cost_rows: pd.DataFrame,
                   programs: Mapping[str, str], settings: RoiSettings) -> pd.DataFrame:
    """Per program: released median earnings change (per year) x annuity factor / released
    cost per participant. Only released figures go in, so only they can come out.

    Returns:
        ``program_id, partner_id, median_earnings_change, gain_per_year, horizon_years,
        discount_rate, present_value_gain, cost_per_participant, return_ratio, display,
        suppressed, suppression_reason``.
    """
    change = released_measures[(released_measures["measure"] == "earnings_change_median")
                               & (released_measures["dimension"] == "program")
                               & (released_measures["period"] == ALL)].set_index("group")
    cpp = cost_rows[(cost_rows["dimension"] == "program")
                    & (cost_rows["outcome"] == "participant")].set_index("group")
    factor = annuity_factor(settings.horizon_years, settings.discount_rate)
    per_year = 4.0 / settings.window_quarters
    rows = []
    for program_id in sorted(programs):
        row: dict[str, Any] = {
            "program_id": program_id, "partner_id": programs[program_id],
            "median_earnings_change": None, "gain_per_year": None,
            "horizon_years": int(settings.horizon_years),
            "discount_rate": float(settings.discount_rate), "present_value_gain": None,
            "cost_per_participant": None, "return_ratio": None,
            "display": disclosure.SUPPRESSED, "suppressed": True, "suppression_reason": None}
        gain = change.loc[program_id] if program_id in change.index else None
        cost = cpp.loc[program_id] if program_id in cpp.index else None
        if gain is None or bool(gain["suppressed"]) or pd.isna(gain["value"]):
            row["suppression_reason"] = ("earnings change: " + str(gain["suppression_reason"])
                                         if gain is not None and not pd.isna(
                                             gain["suppression_reason"])
                                         else "earnings change: no exits measured")
        elif cost is None or bool(cost["suppressed"]) or pd.isna(cost["cost_per_unit"]):
            row["suppression_reason"] = ("cost per participant: "
                                         + str(cost["suppression_reason"]
                                               if cost is not None else NO_COST_DATA))
        else:
            gain_year = float(gain["value"]) * per_year
            pv = gain_year * factor
            ratio = pv / float(cost["cost_per_unit"])
            row.update(median_earnings_change=float(gain["value"]), gain_per_year=gain_year,
                       present_value_gain=round(pv, 2),
                       cost_per_participant=float(cost["cost_per_unit"]),
                       return_ratio=round(ratio, 2), display=f"{ratio:.2f}",
                       suppressed=False)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[
        "program_id", "partner_id", "median_earnings_change", "gain_per_year",
        "horizon_years", "discount_rate", "present_value_gain", "cost_per_participant",
        "return_ratio", "display", "suppressed", "suppression_reason"])
    return frame.astype({"median_earnings_change": "Float64", "gain_per_year": "Float64",
                         "present_value_gain": "Float64", "cost_per_participant": "Float64",
                         "return_ratio": "Float64", "suppressed": bool})


# ---- released relations ---------------------------------------------------------------

def program_costs_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """``released_program_costs``: costs by program, quarter, funding stream and category as
    sent (no person data), with whether the quarter is complete for the program."""
    return con.execute(
        """
        SELECT p.partner_id, p.program_id, p.cost_quarter, p.funding_stream, p.cost_category,
               sum(p.amount)::DECIMAL(14, 2) AS amount,
               CASE WHEN bool_or(p.cost_period = p.cost_quarter) THEN 'quarter'
                    ELSE 'month' END AS sent_as,
               any_value(q.complete) AS quarter_complete
        FROM program_cost AS p
        JOIN program_cost_quarter AS q
          ON q.program_id = p.program_id AND q.cost_quarter = p.cost_quarter
        GROUP BY ALL
        ORDER BY p.partner_id, p.program_id, p.cost_quarter, p.funding_stream, p.cost_category
        """).df()


def settings_frame(settings: RoiSettings) -> pd.DataFrame:
    """``released_roi_settings``: the window, horizon, discount rate and formula."""
    factor = annuity_factor(settings.horizon_years, settings.discount_rate)
    return pd.DataFrame([
        ("earnings_before", f"{settings.pre_quarters} quarters before the entry quarter"),
        ("earnings_after", f"quarters {settings.post_first} to {settings.post_last} after "
                           "the exit quarter"),
        ("earnings_change", "after - before, per exit; median released as a fuzzy median"),
        ("comparison", "before/after within the same people; no comparison group, so not "
                       "an effect of the program"),
        ("cost_window", "a program's complete cost quarters (sent as a quarter or as all "
                        "three months) whose exits are all measurable"),
        ("horizon_years", str(settings.horizon_years)),
        ("discount_rate", f"{settings.discount_rate:g}"),
        ("annuity_factor", f"{factor:.4f}"),
        ("return_formula", "median earnings change x (4 / window quarters) x sum_{t=1..H} "
                           "(1 + r)^-t / cost per participant"),
    ], columns=["setting", "value"])


def roi_groups(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Every group cost per outcome reports: programs and partners with enrollments or costs,
    funding streams of either, and overall."""
    def values(sql: str) -> list[str]:
        return sorted({r[0] for r in con.execute(sql).fetchall() if r[0] is not None})

    return {
        "overall": [ALL],
        "partner": values("SELECT partner_id FROM program UNION SELECT partner_id "
                          "FROM program_cost"),
        "program": values("SELECT program_id FROM program UNION SELECT program_id "
                          "FROM program_cost"),
        "funding_stream": values("SELECT funding_stream FROM enrollment UNION SELECT "
                                 "funding_stream FROM program_cost"),
    }


def roi_tables(con: duckdb.DuckDBPyConnection, released_measures: pd.DataFrame, *,
               threshold: int, settings: RoiSettings,
               datasets_sent: pd.DataFrame | None = None,
               noisy_counts: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The released ROI relations from the analyst warehouse (views created, the earnings
    measures already in ``released_measures``). ``noisy_counts``: the DP mode's released ROI
    counts (made under the release's budget); otherwise the exact counts are suppressed
    here."""
    programs = dict(con.execute(
        "SELECT program_id, partner_id FROM program UNION SELECT DISTINCT program_id, "
        "partner_id FROM program_cost").fetchall())
    if noisy_counts is not None:
        suppressed = noisy_counts
    else:
        suppressed = suppress_counts(
            roi_counts(con), released_measures, threshold=threshold, programs=programs,
            signatures=cell_signatures(con, ROI_DIMENSIONS, specs=COUNT_SPECS),
            few_persons=few_person_cells(con, COUNT_SPECS, threshold, ROI_DIMENSIONS))
    unsent: set[str] = set()
    if datasets_sent is not None:
        senders = set(datasets_sent.loc[datasets_sent["dataset"] == "program_costs",
                                        "partner_id"])
        unsent = set(programs.values()) - senders
    cost_rows = cost_per_outcome(window_costs(con), suppressed, groups=roi_groups(con),
                                 no_costs_sent={"partner": unsent}, programs=programs)
    return {
        "released_program_costs": program_costs_frame(con),
        "released_cost_per_outcome": cost_rows,
        "released_program_return": program_return(released_measures, cost_rows, programs,
                                                  settings),
        "released_roi_settings": settings_frame(settings),
    }


def released_tables(con: duckdb.DuckDBPyConnection, *, settings: RoiSettings | None = None,
                    threshold: int = disclosure.DEFAULT_SMALL_CELL,
                    protect_complement: bool = True, datasets_sent: pd.DataFrame | None = None,
                    **dp_settings: Any) -> dict[str, pd.DataFrame]:
    """Every released figure: :func:`pipelines.warehouse.disclosure.released_tables` with the
    earnings-change measures added, and the ROI relations. Creates the ROI views first.

    Args:
        con: The analyst warehouse (facts loaded, ``create_warehouse_views`` done).
        settings: ``[roi]`` (default :class:`RoiSettings`).
        threshold, protect_complement, datasets_sent, dp_settings: As for
            :func:`pipelines.warehouse.disclosure.released_tables`.
    """
    settings = settings or RoiSettings()
    create_roi_views(con, settings)
    with views_materialized(con):
        return _released_tables(con, settings, threshold, protect_complement, datasets_sent,
                                dp_settings)


def _released_tables(con: duckdb.DuckDBPyConnection, settings: RoiSettings, threshold: int,
                     protect_complement: bool, datasets_sent: pd.DataFrame | None,
                     dp_settings: dict[str, Any]) -> dict[str, pd.DataFrame]:
    dp_mode = dp_settings.get("mode") == "dp"
    # in DP mode the ROI counts are noisy figures under the same budget as every other one
    earnings = earnings_specs(settings)
    specs = {**MEASURES, **earnings, **(COUNT_SPECS if dp_mode else {})}
    tables = disclosure.released_tables(
        con, threshold=threshold, protect_complement=protect_complement,
        datasets_sent=datasets_sent, specs=specs,
        forced=() if dp_mode else few_person_cells(con, earnings, threshold, DIMENSIONS),
        **dp_settings)
    noisy = None
    if dp_mode:
        measures = tables["released_measures"]
        internal = measures["measure"].isin(set(COUNT_SPECS))
        noisy = measures[internal].reset_index(drop=True)
        tables["released_measures"] = measures[~internal].reset_index(drop=True)
        definitions = tables["released_measure_definitions"]
        tables["released_measure_definitions"] = definitions[
            ~definitions["measure"].isin(set(COUNT_SPECS))].reset_index(drop=True)
    tables.update(roi_tables(con, tables["released_measures"], threshold=threshold,
                             settings=settings, datasets_sent=datasets_sent,
                             noisy_counts=noisy))
    return tables
