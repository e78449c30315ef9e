"""Disclosure avoidance for the evaluator warehouse: suppression, release, restricted queries.

Rules (thresholds are parameters; the default comes from ``[thresholds] small_cell`` in the
workspace's ``pathlink.toml``, 10 when absent):

1. Primary suppression. A rate cell is suppressed when its numerator or its denominator is
   under the threshold, or (``protect_complement``) when denominator - numerator is under it,
   or when the rate is exactly 0% or 100%. A median cell is suppressed when n is under the
   threshold. A count cell (co-enrollment pairs) when the count is under the threshold
   (zeros included).
2. Linked cells. Measures of one family share populations (e.g. the number employed in Q2 is
   both the numerator of ``employment_q2`` and the n of ``median_earnings_q2``), so a cell
   (dimension, group, period) suppressed in one measure of a family is suppressed in all.
3. Complementary suppression. Along every additive line (the groups of one dimension plus the
   overall cell they add up to; an exit-quarter series plus its all-quarters cell; one partner's
   row of the partner x partner matrix), a single suppressed cell could be recovered by
   subtraction, so the next-smallest published cell is suppressed too. Repeated until stable.
4. Audit. A linear-algebra attack (is a suppressed cell's unit vector in the row space of the
   published sums?) runs on each measure; any cell it can solve forces one more suppression.
5. Display. Released rates are rounded to 3 decimals and shown as whole percents; a rate that
   would show as 0% or 100% after rounding is shown as "<1%" / ">99%" with value NULL. Medians
   are released only as the fuzzy median (mean of the 45th and 55th percentiles), rounded to
   $10, and only when n >= threshold.

6. Reasons. Every suppressed cell carries ``suppression_reason``: ``small cell`` (rule 1),
   ``complementary`` (rules 2-4 and cells with the same units as a suppressed one, e.g. a
   partner whose only program is suppressed) or ``no data sent`` (the partner sent no file of
   the dataset the measure's numerator needs, so a 0% would be false). Since the reason tells
   an attacker that a complementary cell is not small, an interval audit
   (:func:`interval_leaks`) checks that no suppressed count can be narrowed to fewer than
   ``threshold`` possible values by the line sums and those bounds; one that can forces
   another suppression.

``released_*`` relations written by :func:`write_released` hold only these figures. Queries
run in :mod:`pipelines.warehouse.sandbox`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from pipelines.tables import create_table_from_frame
from pipelines.warehouse.measures import (
    ALL,
    MEASURES,
    MeasureSpec,
    cell_signatures,
    coenrollment_pairs,
    compute_measures,
)

DEFAULT_SMALL_CELL = 10
RELEASED_PREFIX = "released_"
SUPPRESSED = "suppressed"

Key = tuple[str, str, str]  # (dimension, group, period)

#: Internal suppression status -> the released ``suppression_reason``.
REASONS = {"primary": "small cell", "complementary": "complementary",
           "no_data": "no data sent"}
#: What a measure's numerator needs and from whom: (datasets, "partner" = the enrolling
#: partner's own files | "any" = any partner's). A partner cell (and its programs' cells) whose
#: partner sent none of the datasets, or every cell when no partner sent any, is "no data sent".
NUMERATOR_NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "employment_q2": (("wages",), "any"),
    "employment_q4": (("wages",), "any"),
    "median_earnings_q2": (("wages",), "any"),
    "retention_q2_q4": (("wages",), "any"),
    "credential_attainment": (("credentials",), "any"),
    "measurable_skill_gains": (("assessments", "credentials"), "partner"),
    "supportive_services": (("services",), "partner"),
    "services_by_type": (("services",), "partner"),
}


# ---- threshold ----------------------------------------------------------------------------

def small_cell_threshold(workspace_root: str | Path | None = None) -> int:
    """``[thresholds] small_cell`` from the workspace config (10 without a workspace)."""
    if workspace_root is None:
        return DEFAULT_SMALL_CELL
    from pipelines.workspace import load_workspace

    return int(load_workspace(workspace_root).small_cell_threshold)


# ---- lines (additive relations between published cells) ----------------------------------

@dataclass(frozen=True)
class Line:
    """Cells whose parts add up to ``total`` (``total`` may be None when not published)."""

    parts: tuple[Key, ...]
    total: Key | None

    @property
    def cells(self) -> tuple[Key, ...]:
        return (*self.parts, self.total) if self.total is not None else self.parts


def measure_lines(rows: pd.DataFrame, spec: MeasureSpec,
                  hierarchy: Mapping[str, tuple[str, Mapping[str, str]]] | None = None
                  ) -> list[Line]:
    """Additive lines of one measure's cells (rows of one measure of the tidy frame).

    ``hierarchy``: dimension -> (parent dimension, group -> parent group), e.g. ``{"program":
    ("partner", program_id -> partner_id)}``: the groups of each parent also add up to the
    parent's cell (a partner's programs to the partner), when both dimensions are additive.
    """
    keys = set(zip(rows["dimension"], rows["group"], rows["period"], strict=True))
    lines: list[Line] = []
    for dimension, (parent, parent_of) in (hierarchy or {}).items():
        if dimension not in spec.additive_dimensions or parent not in spec.additive_dimensions:
            continue
        sub = rows[rows["dimension"] == dimension]
        for period in sorted(set(sub["period"])):
            children: dict[str, list[Key]] = {}
            for group in sub.loc[sub["period"] == period, "group"]:
                if group in parent_of:
                    children.setdefault(parent_of[group], []).append((dimension, group, period))
            for parent_group, parts in sorted(children.items()):
                total = (parent, parent_group, period)
                if total in keys:
                    lines.append(Line(tuple(sorted(parts)), total))
    for dimension in sorted(set(rows["dimension"])):
        sub = rows[rows["dimension"] == dimension]
        if dimension != "overall" and dimension in spec.additive_dimensions:
            for period in sorted(set(sub["period"])):
                parts = tuple(sorted((dimension, g, period)
                                     for g in sub.loc[sub["period"] == period, "group"]))
                total = ("overall", ALL, period)
                lines.append(Line(parts, total if total in keys else None))
        by_period = sub[sub["period"] != ALL]
        for group in sorted(set(by_period["group"])):
            parts = tuple(sorted((dimension, group, p)
                                 for p in by_period.loc[by_period["group"] == group, "period"]))
            total = (dimension, group, ALL)
            lines.append(Line(parts, total if total in keys else None))
    return [line for line in lines if len(line.cells) >= 2]


def _complete_lines(lines: list[Line], suppressed: set, size: Mapping) -> bool:
    """One pass of 'no line with exactly one suppressed cell'. Returns True if it changed."""
    changed = False
    for line in lines:
        hidden = [c for c in line.cells if c in suppressed]
        if len(hidden) != 1:
            continue
        candidates = [c for c in line.parts if c not in suppressed]
        if not candidates and line.total is not None and line.total not in suppressed:
            candidates = [line.total]
        if candidates:
            suppressed.add(min(candidates, key=lambda c: (size.get(c, 0), c)))
            changed = True
    return changed


def recoverable_cells(lines: Iterable[Line], suppressed: set) -> set:
    """Suppressed cells an attacker can solve exactly from the published line sums.

    Every line gives one linear equation in the suppressed cells (the published cells and the
    sum are known); a cell is determined iff its unit vector lies in the row space.
    """
    unknowns = sorted({c for line in lines for c in line.cells if c in suppressed})
    if not unknowns:
        return set()
    index = {c: i for i, c in enumerate(unknowns)}
    rows = []
    for line in lines:
        if not any(c in index for c in line.cells):
            continue
        if line.total is None:
            continue  # the sum is not published: no equation
        row = np.zeros(len(unknowns))
        for c in line.parts:
            if c in index:
                row[index[c]] += 1.0
        if line.total in index:
            row[index[line.total]] -= 1.0
        if np.any(row):
            rows.append(row)
    if not rows:
        return set()
    return {unknowns[j] for j in determined_unknowns(np.vstack(rows))}


def determined_unknowns(matrix: np.ndarray, tol: float = 1e-9) -> list[int]:
    """Columns j whose unit vector e_j lies in the row space of ``matrix``: the unknowns a
    system of these equations pins down. One SVD: e_j is in the row space iff its projection
    onto the right singular vectors of the non-zero singular values has length 1."""
    if matrix.size == 0:
        return []
    _u, sv, vt = np.linalg.svd(matrix, full_matrices=False)
    rank = int((sv > tol * max(matrix.shape) * (sv[0] if len(sv) else 0)).sum())
    if rank == 0:
        return []
    weight = (vt[:rank] ** 2).sum(axis=0)
    return [int(j) for j in np.flatnonzero(weight > 1 - 1e-7)]


# ---- measures -----------------------------------------------------------------------------

def _primary(row: Any, spec: MeasureSpec, threshold: int, protect_complement: bool) -> bool:
    den = row.denominator
    if pd.isna(den) or den < threshold:
        return True
    if spec.kind in ("median", "count"):
        return False
    num = row.numerator
    if pd.isna(num) or num < threshold or num == 0 or num == den:
        return True
    return bool(protect_complement and den - num < threshold)


def no_data_cells(tidy: pd.DataFrame, datasets_sent: pd.DataFrame | None,
                  programs: Mapping[str, str] | None = None) -> set[tuple[str, Key]]:
    """Cells whose numerator needs data nobody (or the cell's partner) sent.

    Args:
        tidy: The measures frame.
        datasets_sent: ``partner_id, dataset`` of accepted files; None: not known (no cell).
        programs: program_id -> partner_id (default: the prefix of ``<partner>:<code>``).
    """
    if datasets_sent is None:
        return set()
    sent: dict[str, set[str]] = {}
    for partner, dataset in zip(datasets_sent["partner_id"], datasets_sent["dataset"],
                                strict=True):
        sent.setdefault(dataset, set()).add(partner)
    out: set[tuple[str, Key]] = set()
    for row in tidy.itertuples(index=False):
        needs = NUMERATOR_NEEDS.get(row.measure)
        if needs is None:
            continue
        datasets, source = needs
        senders = set().union(*(sent.get(d, set()) for d in datasets))
        key = (row.dimension, row.group, row.period)
        if not senders:
            out.add((row.measure, key))
        elif source == "partner" and row.dimension in ("partner", "program"):
            partner = row.group if row.dimension == "partner" else (
                (programs or {}).get(row.group) or str(row.group).split(":", 1)[0])
            if partner not in senders:
                out.add((row.measure, key))
    return out


def _signature_groups(signatures: pd.DataFrame | None,
                      members: list[str]) -> list[set[Key]]:
    """Sets of cells (of one family's measures) that hold exactly the same units."""
    if signatures is None or signatures.empty:
        return []
    rows = signatures[signatures["measure"].isin(members)]
    groups: dict[tuple[str, str], set[Key]] = {}
    for r in rows.itertuples(index=False):
        if str(r.signature).startswith("0:"):
            continue  # empty cells: suppressed by rule 1 anyway
        groups.setdefault((r.measure, r.signature), set()).add((r.dimension, r.group, r.period))
    return [cells for cells in groups.values() if len(cells) > 1]


def suppress_measures(
    tidy: pd.DataFrame,
    *,
    threshold: int = DEFAULT_SMALL_CELL,
    protect_complement: bool = True,
    specs: Mapping[str, MeasureSpec] = MEASURES,
    no_data: Iterable[tuple[str, Key]] = (),
    signatures: pd.DataFrame | None = None,
    forced: Iterable[tuple[str, Key]] = (),
    hierarchy: Mapping[str, tuple[str, Mapping[str, str]]] | None = None,
) -> pd.DataFrame:
    """Apply primary, linked and complementary suppression to a tidy measures frame.

    Args:
        tidy: Output of :func:`pipelines.warehouse.measures.compute_measures`.
        threshold: Small-cell threshold (counts under it are suppressed).
        protect_complement: Also suppress rates whose denominator - numerator is small.
        specs: Measure definitions (kind, family, additive dimensions).
        no_data: ``(measure, (dimension, group, period))`` cells whose numerator needs data
            that was not sent (:func:`no_data_cells`); suppressed as "no data sent".
        signatures: :func:`pipelines.warehouse.measures.cell_signatures`: cells with the same
            units are suppressed together.
        forced: ``(measure, key)`` cells to suppress as "complementary" whatever their size
            (cells nested in another suppressed cell: :mod:`pipelines.warehouse.roi`).
        hierarchy: Extra additive lines (:func:`measure_lines`).

    Returns:
        The released frame: ``measure, dimension, group, period, numerator, denominator,
        value, display, suppressed, suppression_reason`` with figures of suppressed cells set
        to NULL, plus the internal column ``suppression`` (``primary`` / ``complementary`` /
        ``no_data``), which is not released.
    """
    tidy = tidy.reset_index(drop=True)
    no_data = set(no_data)
    forced = set(forced)
    families: dict[str, list[str]] = {}
    for name in dict.fromkeys(tidy["measure"]):
        spec = specs[name]
        families.setdefault(spec.family or name, []).append(name)
    status: dict[tuple[str, Key], str] = {}
    for members in families.values():
        family_rows = tidy[tidy["measure"].isin(members)]
        primary: set[Key] = set()
        missing: set[Key] = set()
        for row in family_rows.itertuples(index=False):
            key = (row.dimension, row.group, row.period)
            if (row.measure, key) in no_data:
                missing.add(key)
            elif _primary(row, specs[row.measure], threshold, protect_complement):
                primary.add(key)
        primary -= missing
        suppressed: set[Key] = primary | missing | {
            key for measure, key in forced if measure in members}
        same_units = _signature_groups(signatures, members)
        per_measure = []
        for name in members:
            rows = family_rows[family_rows["measure"] == name]
            size = {(r.dimension, r.group, r.period): (0 if pd.isna(r.denominator)
                                                       else int(r.denominator))
                    for r in rows.itertuples(index=False)}
            per_measure.append((name, rows, measure_lines(rows, specs[name], hierarchy), size))
        for _ in range(1000):
            changed = False
            for cells in same_units:
                if cells & suppressed and not cells <= suppressed:
                    suppressed |= cells
                    changed = True
            for _name, _rows, lines, size in per_measure:
                while _complete_lines(lines, suppressed, size):
                    changed = True
                for cell in sorted(recoverable_cells(lines, suppressed)):
                    for line in lines:
                        if cell in line.cells:
                            open_cells = [c for c in line.parts if c not in suppressed]
                            if open_cells:
                                suppressed.add(min(open_cells,
                                                   key=lambda c, s=size: (s.get(c, 0), c)))
                                changed = True
                                break
            if not changed:
                for name, rows, lines, size in per_measure:
                    leaks = interval_leaks(rows, lines, suppressed, primary | missing,
                                           spec=specs[name], threshold=threshold,
                                           protect_complement=protect_complement)
                    for line in leaks:
                        open_cells = [c for c in line.parts if c not in suppressed]
                        if not open_cells and line.total is not None \
                                and line.total not in suppressed:
                            open_cells = [line.total]
                        if open_cells:
                            suppressed.add(max(open_cells,
                                               key=lambda c, s=size: (s.get(c, 0), c)))
                            changed = True
            if not changed:
                break
        for name in members:
            for key in suppressed:
                status[(name, key)] = ("no_data" if key in missing else
                                       "primary" if key in primary else "complementary")
    keys = list(zip(tidy["measure"],
                    zip(tidy["dimension"], tidy["group"], tidy["period"], strict=True),
                    strict=True))
    tidy["suppression"] = [status.get(k) for k in keys]
    return _released_measure_frame(tidy, specs)


def interval_leaks(rows: pd.DataFrame, lines: list[Line], suppressed: set[Key],
                   primary: set[Key], *, spec: MeasureSpec, threshold: int,
                   protect_complement: bool = True) -> list[Line]:
    """Lines through which an attacker who knows each suppressed cell's reason can narrow a
    suppressed count to fewer than ``threshold`` possible values.

    The attacker knows every published cell and line total, and that a cell suppressed as
    ``complementary`` passed rule 1 (numerator and denominator at least ``threshold``, and with
    ``protect_complement`` at least ``threshold`` outside the numerator, so its denominator is
    at least 2 x ``threshold``); a ``small cell`` or ``no data sent`` cell gets no bound but
    0. Bounds are propagated along each line until stable (numerators and denominators
    separately); a line is returned when one of its suppressed cells ends up with an interval
    narrower than ``threshold``.
    """
    fields = ["denominator"] if spec.kind in ("median", "count") else [
        "numerator", "denominator"]
    by_key = {(r.dimension, r.group, r.period): r for r in rows.itertuples(index=False)}
    flagged: list[Line] = []
    for field in fields:
        low: dict[Key, float] = {}
        high: dict[Key, float] = {}
        for key in suppressed:
            if key not in by_key:
                continue
            if key in primary:
                low[key] = 0.0
            elif field == "denominator":
                low[key] = float(threshold if spec.kind in ("median", "count")
                                 or not protect_complement else 2 * threshold)
            else:
                low[key] = float(threshold)
            high[key] = float("inf")

        def known(cell: Key, field: str = field) -> float | None:
            row = by_key.get(cell)
            if row is None or cell in suppressed:
                return None
            value = getattr(row, field)
            return None if pd.isna(value) else float(value)

        usable = [line for line in lines if line.total is not None
                  and any(c in low for c in line.cells)]
        for _ in range(50):
            moved = False
            for line in usable:
                hidden_parts = [c for c in line.parts if c in low]
                total_hidden = line.total in low
                shown = [known(c) for c in line.parts if c not in low]
                if any(v is None for v in shown):
                    continue
                if total_hidden:
                    continue  # the line's sum is unknown: it bounds nothing exactly
                rest = known(line.total)
                if rest is None:
                    continue
                remainder = rest - sum(shown)  # the hidden parts add up to this
                for cell in hidden_parts:
                    others = [c for c in hidden_parts if c != cell]
                    new_high = remainder - sum(low[c] for c in others)
                    new_low = remainder - sum(high[c] for c in others)
                    if new_high < high[cell]:
                        high[cell], moved = new_high, True
                    if new_low > low[cell]:
                        low[cell], moved = new_low, True
            if not moved:
                break
        for line in usable:
            if line in flagged:
                continue
            if any(high[c] - low[c] + 1 < threshold for c in line.cells if c in low):
                flagged.append(line)
    return flagged


def _format_rate(value: float) -> tuple[float | None, str]:
    rounded = round(float(value), 3)
    if value < 0.01:
        return (None if rounded <= 0 else rounded), "<1%"
    if value > 0.99:
        return (None if rounded >= 1 else rounded), ">99%"
    return rounded, f"{round(value * 100):d}%"


def dollars(amount: float) -> str:
    """``$1,230`` or ``-$1,230`` (whole dollars)."""
    return f"-${-amount:,.0f}" if amount < 0 else f"${amount:,.0f}"


def _released_measure_frame(tidy: pd.DataFrame, specs: Mapping[str, MeasureSpec]) -> pd.DataFrame:
    values: list[float | None] = []
    displays: list[str] = []
    for row in tidy.itertuples(index=False):
        if row.suppression is not None:
            values.append(None)
            displays.append(SUPPRESSED)
        elif specs[row.measure].kind == "median":
            fuzzy = row.fuzzy_value
            if pd.isna(fuzzy):
                values.append(None)
                displays.append(SUPPRESSED)
            else:
                released = float(round(fuzzy / 10.0) * 10)
                values.append(released)
                displays.append(dollars(released))
        elif specs[row.measure].kind == "count":
            values.append(float(row.denominator))
            displays.append(f"{int(row.denominator):,d}")
        else:
            value, display = _format_rate(row.numerator / row.denominator)
            values.append(value)
            displays.append(display)
    hidden = tidy["suppression"].notna()
    out = pd.DataFrame({
        "measure": tidy["measure"],
        "dimension": tidy["dimension"],
        "group": tidy["group"],
        "period": tidy["period"],
        "numerator": tidy["numerator"].astype("Int64").mask(hidden),
        "denominator": tidy["denominator"].astype("Int64").mask(hidden),
        "value": pd.array(values, dtype="Float64"),
        "display": displays,
        "suppressed": hidden.to_numpy(),
        "suppression_reason": tidy["suppression"].map(REASONS),
        "suppression": tidy["suppression"],
    })
    return out


# ---- co-enrollment pairs ------------------------------------------------------------------

def pair_lines(pairs: pd.DataFrame) -> list[Line]:
    """Rows of the symmetric partner matrix (no published sum: lines without total)."""
    partners = sorted(set(pairs["partner_a"]) | set(pairs["partner_b"]))
    lines = []
    for partner in partners:
        cells = tuple(sorted((a, b, "all") for a, b in zip(pairs["partner_a"],
                                                             pairs["partner_b"], strict=True)
                             if partner in (a, b)))
        lines.append(Line(cells, None))
    return lines


def suppress_pairs(
    pairs: pd.DataFrame,
    *,
    threshold: int = DEFAULT_SMALL_CELL,
    linked_diagonal: Iterable[str] = (),
) -> pd.DataFrame:
    """Suppress the partner x partner co-enrollment matrix.

    Args:
        pairs: ``partner_a, partner_b, persons`` (a <= b; a == b is the partner's caseload).
        threshold: Small-cell threshold.
        linked_diagonal: Partners whose caseload is suppressed elsewhere (the ``partner``
            group of ``co_enrollment``); their diagonal cell is suppressed too.

    Returns:
        ``partner_a, partner_b, persons, display, suppressed, suppression_reason`` (+ internal
        ``suppression``).
    """
    size = {(a, b, "all"): int(n) for a, b, n in zip(pairs["partner_a"], pairs["partner_b"],
                                                      pairs["persons"], strict=True)}
    primary = {c for c, n in size.items() if n < threshold}
    suppressed = set(primary) | {(p, p, "all") for p in linked_diagonal if (p, p, "all") in size}
    lines = pair_lines(pairs)
    for _ in range(1000):
        changed = False
        for line in lines:
            hidden = [c for c in line.cells if c in suppressed]
            if len(hidden) != 1:
                continue
            open_cells = [c for c in line.cells if c not in suppressed and c[0] != c[1]]
            open_cells = open_cells or [c for c in line.cells if c not in suppressed]
            if open_cells:
                suppressed.add(min(open_cells, key=lambda c: (size[c], c)))
                changed = True
        if not changed:
            break
    keys = [(a, b, "all") for a, b in zip(pairs["partner_a"], pairs["partner_b"], strict=True)]
    hidden = pd.Series([k in suppressed for k in keys], index=pairs.index)
    return pd.DataFrame({
        "partner_a": pairs["partner_a"],
        "partner_b": pairs["partner_b"],
        "persons": pairs["persons"].astype("Int64").mask(hidden),
        "display": [SUPPRESSED if h else str(int(n))
                    for h, n in zip(hidden, pairs["persons"], strict=True)],
        "suppressed": hidden.to_numpy(),
        "suppression_reason": [REASONS["primary"] if k in primary else (
            REASONS["complementary"] if k in suppressed else None) for k in keys],
        "suppression": ["primary" if k in primary else ("complementary" if k in suppressed
                                                         else None) for k in keys],
    }).reset_index(drop=True)


# ---- released tables ----------------------------------------------------------------------

def _definitions(specs: Mapping[str, MeasureSpec] = MEASURES) -> pd.DataFrame:
    return pd.DataFrame([
        {"measure": s.name, "kind": s.kind, "unit": s.unit, "title": s.title,
         "description": s.description,
         "additive_dimensions": ",".join(s.additive_dimensions)}
        for s in specs.values()
    ])


def _rules(threshold: int, protect_complement: bool) -> pd.DataFrame:
    return pd.DataFrame([
        ("mode", "suppression"),
        ("small_cell_threshold", str(threshold)),
        ("protect_complement", str(protect_complement).lower()),
        ("complementary_suppression", "along every additive line until stable, plus a "
                                      "linear-algebra audit"),
        ("median", "fuzzy median = mean of 45th and 55th percentiles, rounded to $10"),
        ("reasons", "small cell | complementary | no data sent; an interval audit keeps every "
                    "suppressed count uncertain to at least the threshold's number of values"),
        ("rates", "rounded to 3 decimals; <1% and >99% shown as such with value NULL"),
        ("date_precision", "months YYYY-MM, quarters YYYYQn"),
    ], columns=["rule", "setting"])


def released_tables(
    con: duckdb.DuckDBPyConnection,
    *,
    threshold: int = DEFAULT_SMALL_CELL,
    protect_complement: bool = True,
    datasets_sent: pd.DataFrame | None = None,
    mode: str = "suppression",
    rho: float = 1.0,
    delta: float = 1e-6,
    max_units_per_person: int = 2,
    specs: Mapping[str, MeasureSpec] = MEASURES,
    forced: Iterable[tuple[str, Key]] = (),
) -> dict[str, pd.DataFrame]:
    """Compute every measure and pair count from the warehouse and suppress them (or, in
    ``dp`` mode, compute them under differential privacy: :mod:`pipelines.warehouse.dp`).

    Args:
        con: The analyst warehouse (facts and views).
        threshold: Small-cell threshold.
        protect_complement: See :func:`suppress_measures`.
        datasets_sent: ``partner_id, dataset`` of accepted files, for "no data sent" (None:
            not known, no such reason).
        mode: ``suppression`` or ``dp``.
        specs: The measures (default :data:`MEASURES`; the release adds the earnings-change
            measures of :func:`pipelines.warehouse.roi.earnings_specs`).
        forced: Cells suppressed whatever their size (:func:`suppress_measures`).
        rho, delta, max_units_per_person: The ``dp`` mode's budget, the delta its
            (epsilon, delta) statement uses, and the contribution bound.

    Returns:
        ``released_measures``, ``released_coenrollment_pairs``, ``released_measure_definitions``,
        ``released_disclosure_rules`` (internal ``suppression`` columns removed).
    """
    programs = dict(con.execute("SELECT program_id, partner_id FROM program").fetchall())
    if mode == "dp":
        return _dp_tables(con, threshold=threshold, datasets_sent=datasets_sent,
                          programs=programs, rho=rho, delta=delta,
                          max_units=max_units_per_person, specs=specs)
    tidy = compute_measures(con, specs=specs)
    measures = suppress_measures(
        tidy, threshold=threshold, protect_complement=protect_complement, specs=specs,
        no_data=no_data_cells(tidy, datasets_sent, programs),
        signatures=cell_signatures(con, specs=specs), forced=forced)
    co = measures[(measures["measure"] == "co_enrollment")
                  & (measures["dimension"] == "partner")]
    caseload_hidden = set(co.loc[co["suppressed"], "group"])
    pairs = suppress_pairs(coenrollment_pairs(con), threshold=threshold,
                           linked_diagonal=caseload_hidden)
    return {
        "released_measures": measures.drop(columns=["suppression"]),
        "released_coenrollment_pairs": pairs.drop(columns=["suppression"]),
        "released_measure_definitions": _definitions(specs),
        "released_disclosure_rules": _rules(threshold, protect_complement),
    }


def _dp_tables(con: duckdb.DuckDBPyConnection, *, threshold: int,
               datasets_sent: pd.DataFrame | None, programs: Mapping[str, str], rho: float,
               delta: float, max_units: int,
               specs: Mapping[str, MeasureSpec] = MEASURES) -> dict[str, pd.DataFrame]:
    from pipelines.warehouse import dp

    tidy, pairs, settings = dp.dp_measures(con, rho=rho, max_units=max_units,
                                           threshold=threshold, specs=specs)
    tidy = dp.released_frame(tidy, no_data_cells(tidy, datasets_sent, programs))
    measures = _released_measure_frame(tidy, specs).drop(columns=["suppression"])
    small = pairs["persons"] < threshold
    released_pairs = pd.DataFrame({
        "partner_a": pairs["partner_a"], "partner_b": pairs["partner_b"],
        "persons": pairs["persons"].astype("Int64").mask(small),
        "display": [SUPPRESSED if h else str(int(n))
                    for h, n in zip(small, pairs["persons"], strict=True)],
        "suppressed": small.to_numpy(),
        "suppression_reason": np.where(small, REASONS["primary"], None),
    })
    rules = pd.DataFrame(
        [("small_cell_threshold", str(threshold)),
         *settings.items(),
         ("delta", f"{delta:g}"),
         ("epsilon", f"{dp.epsilon_at(rho, delta):.2f}"),
         ("rates", "noisy numerator / noisy denominator, rounded to 3 decimals"),
         ("median", "OpenDP private quantile (0.5) over $250 steps"),
         ("date_precision", "months YYYY-MM, quarters YYYYQn")],
        columns=["rule", "setting"])
    return {
        "released_measures": measures,
        "released_coenrollment_pairs": released_pairs,
        "released_measure_definitions": _definitions(specs),
        "released_disclosure_rules": rules,
    }


def write_released(con: duckdb.DuckDBPyConnection,
                   tables: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Write released frames as tables, plus one convenience view per measure.

    Views: ``released_<measure>`` = rows of ``released_measures`` for that measure.

    Returns:
        Rows per table written.
    """
    counts = {}
    for name, frame in tables.items():
        if not name.startswith(RELEASED_PREFIX) or not name.replace("_", "").isalnum():
            raise ValueError(f"released relation names must start with {RELEASED_PREFIX!r}")
        if "suppression" in frame.columns:
            raise ValueError(f"{name}: internal column 'suppression' must not be released")
        create_table_from_frame(con, name, frame, replace=True)
        counts[name] = len(frame)
    if "released_measures" in tables:
        defined = tables.get("released_measure_definitions")
        names = [*MEASURES, *(defined["measure"] if defined is not None else ()),
                 *tables["released_measures"]["measure"]]
        for measure in dict.fromkeys(names):
            con.execute(
                f"CREATE OR REPLACE VIEW {RELEASED_PREFIX}{measure} AS "  # noqa: S608
                f"SELECT dimension, \"group\", period, numerator, denominator, value, display, "
                f"suppressed, suppression_reason FROM released_measures "
                f"WHERE measure = '{measure}'"
            )
    return counts


def publish_outcomes(
    con: duckdb.DuckDBPyConnection,
    *,
    threshold: int = DEFAULT_SMALL_CELL,
    protect_complement: bool = True,
    datasets_sent: pd.DataFrame | None = None,
    **dp_settings: object,
) -> dict[str, int]:
    """Compute, suppress and write every released table into an open warehouse connection
    (``dp_settings``: ``mode``, ``rho``, ``delta``, ``max_units_per_person`` for
    :func:`released_tables`)."""
    return write_released(con, released_tables(con, threshold=threshold,
                                               protect_complement=protect_complement,
                                               datasets_sent=datasets_sent,
                                               **dp_settings))  # type: ignore[arg-type]


# ---- released relations ------------------------------------------------------------------

def released_relations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of ``released_*`` tables and views in the main schema."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_name LIKE 'released\\_%' ESCAPE '\\' "
        "ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows]


def export_released(db_path: str | Path, out_dir: str | Path, fmt: str = "csv") -> list[Path]:
    """Write every released relation to ``out_dir/<name>.<fmt>`` (csv or parquet)."""
    if fmt not in ("csv", "parquet"):
        raise ValueError("fmt must be 'csv' or 'parquet'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db_path), read_only=True)
    written = []
    try:
        for name in released_relations(con):
            frame = con.execute(f'SELECT * FROM "{name}"').df()  # noqa: S608
            path = out / f"{name}.{fmt}"
            if fmt == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
            written.append(path)
    finally:
        con.close()
    return written
