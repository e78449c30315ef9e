"""Research extracts: one person-level file per agreement, k-anonymous over declared
quasi-identifiers, with its measured re-identification risk.

An extract holds one row per person served by the agreement's partners (their data only):

* ``research_id``: HMAC-SHA256 of the person id under a random key kept per agreement in
  state/ (``research_keys/<agreement>.key``), so two agreements' extracts cannot be joined on
  it, and a later extract for the same agreement keeps the ids;
* the declared quasi-identifiers (``[release] quasi_identifiers``; default birth year, sex,
  ZIP3, the set of the agreement's partners that served the person, first entry and last exit
  period, first program), generalized along the ladders in :data:`LADDERS` and then cells
  suppressed (``*``) until every combination of them holds at least ``k`` persons;
* analytic columns: race/ethnicity, education or training, outcomes of the person's first
  cohort exit (employment in the 2nd and 4th quarter after it, earnings banded and top-coded,
  credential within a year) and whether a skill gain or supportive service was recorded.

Generalization is a greedy top-down specialization over the ladders (every quasi-identifier
starts at ``*``; one step down at a time, on the quasi-identifier whose step leaves the fewest
persons in classes under ``k``) while at most ``max_suppressed_share`` of persons are in such
classes; those persons then get cells suppressed, fewest first, so that they form classes of
at least ``k`` (a ``*`` is a value of its own: the class of ``1990-1994, F, *`` is every row
with exactly those values, so an attacker who knows a person's true values always finds at
least ``k`` candidates); persons still left over are dropped, and counted.

Measurement (:func:`measure_risk`): class sizes over the quasi-identifiers (k achieved, share
unique, share under k) and the singling-out rate of an attacker who knows a person's
quasi-identifiers generalized the same way: the share of rows matched by no other row, where a
``*`` matches any value. The maintained k-anonymity libraries on the package index (pyCANON,
ANJANA, anonymeter) cannot be installed beside this project's pins (docs/warehouse.md), so the
measurement is DuckDB group counts, checked against a brute-force count in the tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from pipelines.workspace import ReleaseSettings

STAR = "*"
NONE = "none"


def _band(width: int) -> Callable[[str], str]:
    def step(value: str) -> str:
        if value in (NONE, STAR) or not value.isdigit():
            return value
        low = int(value) // width * width
        return f"{low}-{low + width - 1}"
    return step


def _quarter(value: str) -> str:
    if len(value) != 7 or value[4] != "-":
        return value
    return f"{value[:4]}Q{(int(value[5:7]) - 1) // 3 + 1}"


def _year(value: str) -> str:
    return value[:4] if value not in (NONE, STAR) else value


def _partner_count(value: str) -> str:
    if value in (NONE, STAR):
        return value
    n = len(value.split("+"))
    return f"{n} partner{'s' if n > 1 else ''}"


def _one_or_more(value: str) -> str:
    if value in (NONE, STAR):
        return value
    return "1 partner" if "+" not in value else "2+ partners"


def _zip2(value: str) -> str:
    return value[:2] + "x" if len(value) == 3 and value.isdigit() else value


#: Generalization ladders: level 0 is the value itself, level i applies the i-th function to
#: the value (each coarser than the one before), and the last level is always ``*``.
#: ``program`` steps to its funding stream (a column of the frame).
LADDERS: dict[str, tuple[Callable[[str], str] | str, ...]] = {
    "birth_year": (_band(5), _band(10)),
    "sex": (),
    "zip3": (_zip2,),
    "partners": (_partner_count, _one_or_more),
    "entry_period": (_quarter, _year),
    "exit_period": (_quarter, _year),
    "program": ("funding_stream",),
}


def levels_of(qi: str) -> int:
    """Number of levels of a quasi-identifier's ladder (value, coarser steps, ``*``)."""
    return len(LADDERS[qi]) + 2


def generalize_column(frame: pd.DataFrame, qi: str, level: int) -> pd.Series:
    """``frame[qi]`` at ``level`` of its ladder (0: as is; the last level: ``*``)."""
    values = frame[qi].astype(str)
    if level == 0:
        return values
    if level >= levels_of(qi) - 1:
        return pd.Series(STAR, index=frame.index)
    step = LADDERS[qi][level - 1]
    if isinstance(step, str):
        return frame[step].fillna(NONE).astype(str).where(values != NONE, NONE)
    return values.map(step)


def generalize(frame: pd.DataFrame, qis: Sequence[str], levels: dict[str, int]) -> pd.DataFrame:
    """A copy of ``frame`` with each quasi-identifier at its level."""
    out = frame.copy()
    for qi in qis:
        out[qi] = generalize_column(frame, qi, levels.get(qi, 0))
    return out


def class_sizes(frame: pd.DataFrame, qis: Sequence[str]) -> pd.Series:
    """Each row's class size: the number of rows with exactly its quasi-identifier values."""
    if frame.empty:
        return pd.Series(dtype="int64")
    return frame.groupby(list(qis), dropna=False)[qis[0]].transform("size")


def _at_risk(frame: pd.DataFrame, qis: Sequence[str], k: int) -> int:
    return int((class_sizes(frame, qis) < k).sum())


def choose_levels(frame: pd.DataFrame, qis: Sequence[str], k: int,
                  max_suppressed_share: float) -> dict[str, int]:
    """Top-down specialization: start with every quasi-identifier at ``*`` and step down the
    ladder whose step keeps the fewest persons in classes under ``k`` (ties: the declared
    order), as long as at most ``max_suppressed_share`` of persons are in such classes."""
    levels = {qi: levels_of(qi) - 1 for qi in qis}
    allowed = int(max_suppressed_share * len(frame))
    current = generalize(frame, qis, levels)
    while True:
        best: tuple[int, int, str] | None = None
        for order, qi in enumerate(qis):
            if levels[qi] == 0:
                continue
            trial = current.copy()
            trial[qi] = generalize_column(frame, qi, levels[qi] - 1)
            at_risk = _at_risk(trial, qis, k)
            if at_risk <= allowed and (best is None or (at_risk, order) < best[:2]):
                best = (at_risk, order, qi)
        if best is None:
            return levels
        qi = best[2]
        levels[qi] -= 1
        current[qi] = generalize_column(frame, qi, levels[qi])


def suppress_cells(frame: pd.DataFrame, qis: Sequence[str],
                   k: int) -> tuple[pd.DataFrame, int, int]:
    """Set quasi-identifier cells to ``*`` until every class holds at least ``k`` rows.

    Rows in small classes try suppression patterns with as few cells as possible (and, among
    those, the cells with the most distinct values first); a pattern is taken for the rows it
    puts into a class of at least ``k``. Rows that even full suppression cannot protect (fewer
    than ``k`` of them) are dropped.

    Returns:
        (the frame, cells suppressed, rows dropped).
    """
    frame = frame.copy()
    sizes = class_sizes(frame, qis)
    risky = set(frame.index[sizes < k])
    if not risky:
        return frame, 0, 0
    order = sorted(qis, key=lambda q: (-frame[q].nunique(), qis.index(q)))
    suppressed = 0
    for size in range(1, len(qis) + 1):
        for pattern in itertools.combinations(order, size):
            if not risky:
                break
            idx = sorted(risky)
            masked = frame.loc[idx, list(qis)].copy()
            masked[list(pattern)] = STAR
            keys = list(masked.itertuples(index=False, name=None))
            existing = frame.drop(index=idx)[list(qis)]
            existing_counts = existing.groupby(list(qis), dropna=False).size().to_dict() \
                if len(existing) else {}
            new_counts: dict[tuple, int] = {}
            for key in keys:
                new_counts[key] = new_counts.get(key, 0) + 1
            taken = [i for i, key in zip(idx, keys, strict=True)
                     if existing_counts.get(key, 0) + new_counts[key] >= k]
            if taken:
                frame.loc[taken, list(pattern)] = STAR
                suppressed += len(taken) * len(pattern)
                risky -= set(taken)
    dropped = 0
    if risky:
        frame = frame.drop(index=sorted(risky))
        dropped = len(risky)
    # a row that joined a class may have been counted before others left it: re-check
    sizes = class_sizes(frame, qis)
    if (sizes < k).any():
        return suppress_cells(frame, qis, k)[0], suppressed, dropped + int((sizes < k).sum())
    return frame, suppressed, dropped


def matches(frame: pd.DataFrame, qis: Sequence[str], target: Sequence[str]) -> pd.Series:
    """Rows an attacker cannot tell apart from ``target``: equal or ``*`` in every QI."""
    mask = pd.Series(True, index=frame.index)
    for qi, value in zip(qis, target, strict=True):
        column = frame[qi].astype(str)
        mask &= (column == str(value)) | (column == STAR) | (str(value) == STAR)
    return mask


@dataclass(frozen=True)
class Risk:
    """Measured re-identification risk of a person-level frame over its quasi-identifiers."""

    persons: int
    quasi_identifiers: tuple[str, ...]
    k_required: int
    k_achieved: int
    classes: int
    share_unique: float
    share_under_k: float
    singling_out_rate: float
    average_risk: float
    levels: dict[str, int] = field(default_factory=dict)
    cells_suppressed: int = 0
    persons_dropped: int = 0

    def lines(self) -> list[str]:
        return [
            f"persons {self.persons}, quasi-identifiers {', '.join(self.quasi_identifiers)}",
            f"k required {self.k_required}, achieved {self.k_achieved}; "
            f"{self.classes} classes",
            f"share unique {self.share_unique:.2%}, share under k {self.share_under_k:.2%}, "
            f"singling-out rate {self.singling_out_rate:.2%}, average risk "
            f"{self.average_risk:.4f}",
            f"cells suppressed {self.cells_suppressed}, persons dropped {self.persons_dropped}",
        ]


def measure_risk(frame: pd.DataFrame, qis: Sequence[str], k: int, *,
                 levels: dict[str, int] | None = None, cells_suppressed: int = 0,
                 persons_dropped: int = 0) -> Risk:
    """Class sizes over ``qis`` (DuckDB group counts) and the singling-out rate (a row
    singled out when no other row matches it, ``*`` matching anything)."""
    qis = list(qis)
    if frame.empty:
        return Risk(0, tuple(qis), k, 0, 0, 0.0, 0.0, 0.0, 0.0, dict(levels or {}),
                    cells_suppressed, persons_dropped)
    con = duckdb.connect()
    try:
        con.register("extract_rows", frame[qis].astype(str))
        cols = ", ".join(f'"{q}"' for q in qis)
        con.execute(f"CREATE TEMP TABLE classes AS SELECT {cols}, count(*) AS n "  # noqa: S608
                    f"FROM extract_rows GROUP BY ALL")
        # candidates of a class: rows compatible with it (equal, or '*' on either side)
        compatible = " AND ".join(f"(a.\"{q}\" = b.\"{q}\" OR a.\"{q}\" = '{STAR}' "
                                  f"OR b.\"{q}\" = '{STAR}')" for q in qis)
        keyed = con.execute(
            f"SELECT a.n, sum(b.n) AS candidates FROM classes AS a JOIN classes AS b "  # noqa: S608
            f"ON {compatible} GROUP BY a.{cols.replace(', ', ', a.')}, a.n").df()
    finally:
        con.close()
    sizes = keyed["n"]
    persons = len(frame)
    return Risk(
        persons=persons, quasi_identifiers=tuple(qis), k_required=k,
        k_achieved=int(sizes.min()), classes=len(sizes),
        share_unique=float(sizes[sizes == 1].sum() / persons),
        share_under_k=float(sizes[sizes < k].sum() / persons),
        singling_out_rate=float(keyed.loc[keyed["candidates"] == 1, "n"].sum() / persons),
        average_risk=float((keyed["n"] / keyed["candidates"]).sum() / persons),
        levels=dict(levels or {}), cells_suppressed=cells_suppressed,
        persons_dropped=persons_dropped)


# ---- the person frame ---------------------------------------------------------------------

def _in_list(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values) or "NULL"


def person_frame(con: duckdb.DuckDBPyConnection, partners: Sequence[str], *,
                 wages: bool) -> pd.DataFrame:
    """One row per person served by ``partners`` (their data only), ungeneralized.

    Args:
        con: The analyst warehouse.
        partners: The agreement's partners.
        wages: Whether the agreement covers the UI wage data (employment and earnings).
    """
    scope = _in_list(partners)
    outcome = """
        fx.employed_q2, fx.employed_q4, fx.earnings_q2, fx.earnings_q4,
    """ if wages else ""
    sql = f"""
    WITH scope_persons AS (
        SELECT person_id, string_agg(partner_id, '+' ORDER BY partner_id) AS partners
        FROM (SELECT DISTINCT person_id, partner_id FROM participation
              WHERE partner_id IN ({scope}))
        GROUP BY person_id),
    enr AS (SELECT * FROM enrollment_episode WHERE partner_id IN ({scope})),
    first_enr AS (
        SELECT person_id, program_id, funding_stream FROM enr
        QUALIFY row_number() OVER (PARTITION BY person_id
                                   ORDER BY entry_month, program_id) = 1),
    spans AS (
        SELECT person_id, min(entry_month) AS entry_period,
               max(exit_month) AS exit_period, count(*) AS enrollments,
               bool_or(in_education_or_training) AS in_education_or_training
        FROM enr GROUP BY person_id),
    first_exit AS (
        SELECT x.* FROM exit_cohort AS x WHERE x.partner_id IN ({scope})
        QUALIFY row_number() OVER (PARTITION BY x.person_id
                                   ORDER BY x.exit_month, x.program_id) = 1),
    creds AS (
        SELECT f.person_id, bool_or(cr.person_id IS NOT NULL) AS credential_within_year
        FROM first_exit AS f
        LEFT JOIN credential AS cr ON cr.person_id = f.person_id
             AND cr.partner_id IN ({scope})
             AND pl_month_index(cr.attained_month)
                 BETWEEN f.entry_mi AND pl_month_index(f.exit_month) + 12
        GROUP BY f.person_id),
    fx AS (
        SELECT f.person_id,
               coalesce(q2.employed, false) AS employed_q2,
               coalesce(q4.employed, false) AS employed_q4,
               CASE WHEN q2.employed THEN q2.earnings END AS earnings_q2,
               CASE WHEN q4.employed THEN q4.earnings END AS earnings_q4,
               c.credential_within_year
        FROM first_exit AS f
        JOIN creds AS c USING (person_id)
        LEFT JOIN person_wage_quarter AS q2 ON q2.person_id = f.person_id
             AND q2.qi = f.exit_qi + 2
        LEFT JOIN person_wage_quarter AS q4 ON q4.person_id = f.person_id
             AND q4.qi = f.exit_qi + 4),
    race AS (SELECT person_id, grp AS race_ethnicity FROM person_group
             WHERE dimension = 'race_ethnicity'),
    gains AS (SELECT DISTINCT person_id FROM skill_gain_all WHERE partner_id IN ({scope})),
    supported AS (
        SELECT DISTINCT ep.person_id FROM enr AS ep
        JOIN service AS sv ON sv.person_id = ep.person_id AND sv.partner_id = ep.partner_id
         AND pl_month_index(sv.service_month) BETWEEN ep.entry_mi AND ep.end_mi
        WHERE sv.service_type IN ('supportive_service', 'transportation', 'childcare',
                                  'housing', 'work_supplies', 'needs_related_payment',
                                  'emergency_assistance'))
    SELECT sp.person_id,
           p.birth_year, p.sex, p.zip3, sp.partners,
           s.entry_period, s.exit_period, fe.program_id AS program,
           fe.funding_stream,
           s.enrollments, s.in_education_or_training,
           race.race_ethnicity,
           fx.person_id IS NOT NULL AS in_outcome_cohort,
           {outcome}
           fx.credential_within_year,
           gains.person_id IS NOT NULL AS skill_gain,
           supported.person_id IS NOT NULL AS supportive_service
    FROM scope_persons AS sp
    JOIN person AS p USING (person_id)
    LEFT JOIN spans AS s USING (person_id)
    LEFT JOIN first_enr AS fe USING (person_id)
    LEFT JOIN fx USING (person_id)
    LEFT JOIN race USING (person_id)
    LEFT JOIN gains USING (person_id)
    LEFT JOIN supported USING (person_id)
    """  # noqa: S608
    frame = con.execute(sql).df()
    for qi in ("birth_year", "sex", "zip3", "partners", "entry_period", "exit_period",
               "program"):
        frame[qi] = frame[qi].map(lambda v: NONE if v is None or pd.isna(v) else (
            str(int(v)) if isinstance(v, float) else str(v)))
    return frame


def band_wages(values: pd.Series, band: int, top: int) -> pd.Series:
    """Earnings as ``"<low>-<high>"`` bands of ``band`` dollars, ``"<top>+"`` at the top."""
    def label(v: object) -> object:
        if v is None or pd.isna(v):
            return None
        amount = float(v)
        if amount >= top:
            return f"{top}+"
        low = int(amount // band * band)
        return f"{low}-{low + band - 1}"
    return values.map(label)


# ---- the extract --------------------------------------------------------------------------

@dataclass(frozen=True)
class Extract:
    """A written research extract."""

    folder: Path
    data: Path
    risk_file: Path
    risk: Risk
    risk_before: Risk


def agreement_salt(state_dir: Path, agreement_id: str) -> bytes:
    """The agreement's research-id key (32 random bytes, 0600 in state/research_keys/)."""
    folder = state_dir / "research_keys"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{agreement_id}.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(32))
        finally:
            os.close(fd)
    return path.read_bytes()


def research_ids(person_ids: pd.Series, salt: bytes) -> pd.Series:
    """``R`` + 16 hex digits of HMAC-SHA256(salt, person_id)."""
    return person_ids.map(
        lambda p: "R" + hmac.new(salt, str(p).encode(), hashlib.sha256).hexdigest()[:16])


def anonymize(frame: pd.DataFrame, settings: ReleaseSettings, *,
              max_suppressed_share: float = 0.05) -> tuple[pd.DataFrame, Risk, Risk]:
    """Generalize, suppress cells and measure: returns (frame, risk after, risk before)."""
    qis = list(settings.quasi_identifiers)
    before = measure_risk(frame, qis, settings.k)
    levels = choose_levels(frame, qis, settings.k, max_suppressed_share)
    out = generalize(frame, qis, levels)
    out, cells, dropped = suppress_cells(out, qis, settings.k)
    after = measure_risk(out, qis, settings.k, levels=levels, cells_suppressed=cells,
                         persons_dropped=dropped)
    return out, after, before


ANALYTIC_COLUMNS = ("enrollments", "in_education_or_training", "race_ethnicity",
                    "in_outcome_cohort", "employed_q2", "employed_q4", "earnings_q2_band",
                    "earnings_q4_band", "credential_within_year", "skill_gain",
                    "supportive_service")


def write_extract(warehouse_db: Path, folder: Path, *, partners: Sequence[str],
                  settings: ReleaseSettings, salt: bytes, agreement: str, purpose: str,
                  grantee: str, expires: str) -> Extract:
    """Make the extract for ``partners`` from the analyst warehouse and write
    ``folder/extract.parquet`` and ``folder/risk.json`` (each replaced atomically)."""
    con = duckdb.connect(str(warehouse_db), read_only=True)
    try:
        wage_senders = {r[0] for r in con.execute(
            "SELECT DISTINCT partner_id FROM released_data_sent WHERE dataset = 'wages'"
        ).fetchall()}
        wages = bool(wage_senders) and wage_senders <= set(partners)
        frame = person_frame(con, [p for p in partners if p not in wage_senders], wages=wages)
    finally:
        con.close()
    anonymous, risk, before = anonymize(frame, settings)
    if wages:
        anonymous["earnings_q2_band"] = band_wages(anonymous["earnings_q2"], settings.wage_band,
                                                   settings.wage_top_code)
        anonymous["earnings_q4_band"] = band_wages(anonymous["earnings_q4"], settings.wage_band,
                                                   settings.wage_top_code)
    anonymous.insert(0, "research_id", research_ids(anonymous["person_id"], salt))
    keep = ["research_id", *settings.quasi_identifiers,
            *[c for c in ANALYTIC_COLUMNS if c in anonymous.columns]]
    out = anonymous[keep].sort_values("research_id").reset_index(drop=True)
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "extract.parquet"
    tmp = folder / ".extract.parquet.tmp"
    out.to_parquet(tmp, index=False)
    os.replace(tmp, data)
    risk_file = folder / "risk.json"
    meta = {"agreement": agreement, "purpose": purpose, "grantee": grantee,
            "expires": expires, "partners": list(partners), "wages_included": wages,
            "made_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "wage_band": settings.wage_band, "wage_top_code": settings.wage_top_code,
            "risk": asdict(risk), "risk_before_generalization": asdict(before)}
    tmp_risk = folder / ".risk.json.tmp"
    tmp_risk.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp_risk, risk_file)
    return Extract(folder, data, risk_file, risk, before)
