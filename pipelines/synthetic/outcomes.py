"""Seeded synthetic outcome drops for the synthetic persons of
:mod:`pipelines.synthetic.participants`.

For every partner record in the truth file this writes what the partner would send besides the
participant extract, keyed by ``partner_record_id``::

    landing/<partner>/<period>/enrollments.csv   state of each enrollment at the period's end
    landing/<partner>/<period>/services.csv      services (history on first appearance, then
    landing/<partner>/<period>/credentials.csv   only events dated in the period's month)
    landing/<partner>/<period>/employment.csv
    landing/<partner>/<period>/assessments.csv
    landing/<partner>/<period>/program_costs.csv  what each program spent (by month or quarter,
                                                  funding stream and category; history first)
    landing/ct_dol/<period>/wages.csv            quarterly UI wage records with identity fields

Patterns: enrollments start 2022-01 or later; most exiters are employed after exit (more so
after training), wages grow after training, jobs persist with the same employer most quarters,
some persons never give an SSN (so the state wage file cannot carry them), and the wage file's
identity fields come from the person's participant record, errors included. Column names
follow ``data_contracts/<dataset>.yaml`` when the contract exists. Deterministic by seed.

Wage records start in 2021Q1, a year before the first entry, so every exit has pre-entry
wages to compare with (the earnings change, docs/warehouse.md). Program costs follow the
caseload: staff per program month and per active participant, training per entry in a
training program, supportive services as paid plus handling; they are drawn from their own
random stream, so adding them left every other file byte for byte as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

import data_contracts

STATE_WAGE_PARTNER = "ct_dol"
FIRST_MONTH = (2022, 1)
WAGE_FIRST_QUARTER = (2021, 1)
WAGE_LAG_MONTHS = 6  # a period's wage file covers quarters ending >= 6 months earlier

DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "enrollments": ("partner_record_id", "program_id", "funding_stream", "sector", "entry_date",
                    "exit_date", "exit_exclusion_reason"),
    "services": ("partner_record_id", "program_id", "service_date", "service_type", "onet_code",
                 "cip_code", "amount", "description"),
    "credentials": ("partner_record_id", "credential_type", "credential_name", "issuer",
                    "date_attained"),
    "employment": ("partner_record_id", "employer_name", "naics_sector", "onet_code",
                   "start_date", "end_date", "hourly_wage", "weekly_hours"),
    "assessments": ("partner_record_id", "competency", "score", "assessment_date",
                    "assessor_role"),
    "wages": ("ssn", "first_name", "last_name", "date_of_birth", "year_quarter", "employer_id",
              "wages"),
    "program_costs": ("program_id", "cost_period", "cost_amount", "funding_stream",
                      "cost_category"),
}
# Our field -> names a contract might use instead.
ALIASES: dict[str, tuple[str, ...]] = {
    "entry_date": ("enrollment_date", "start_date"),
    "exit_date": ("end_date",),
    "date_attained": ("attained_date", "credential_date"),
    "service_date": ("date",),
    "assessment_date": ("date",),
    "employer_id": ("employer_key", "fein", "employer"),
}


@dataclass(frozen=True)
class Program:
    """A partner program in the synthetic catalog."""

    code: str
    funding_stream: str
    sector: str | None
    training: bool


PROGRAMS: dict[str, tuple[Program, ...]] = {
    "workforce_board": (
        Program("wb-adult-hc", "wioa_adult", "healthcare", True),
        Program("wb-dw-mfg", "wioa_dislocated_worker", "manufacturing", True),
        Program("wb-adult-career", "wioa_adult", None, False),
        Program("wb-dw-it", "wioa_dislocated_worker", "it", True),
    ),
    "youth_dept": (
        Program("yd-syep", "summer_youth_employment", None, False),
        Program("yd-wioa-youth", "wioa_youth", "construction", True),
    ),
    "northend_nonprofit": (
        Program("ne-pathways-hc", "foundation_career_pathways", "healthcare", True),
        Program("ne-cc-transport", "careerconnect", "transportation", True),
    ),
    "southend_nonprofit": (
        Program("se-pathways-energy", "foundation_career_pathways", "clean_energy", True),
        Program("se-cc-finance", "careerconnect", "business_financial_services", True),
    ),
    "civic_assoc": (
        Program("ca-careerconnect", "careerconnect", "construction", False),
        Program("ca-pathways", "foundation_career_pathways", "transportation", True),
    ),
    "community_college": (
        Program("cc-it-cert", "wioa_adult", "it", True),
        Program("cc-mfg-cert", "careerconnect", "manufacturing", True),
        Program("cc-nursing", "foundation_career_pathways", "healthcare", True),
    ),
    "public_schools": (
        Program("ps-youth-cte", "wioa_youth", "it", True),
        Program("ps-syep", "summer_youth_employment", None, False),
    ),
}
DEFAULT_PROGRAMS = (Program("gen-careerconnect", "careerconnect", None, False),
                    Program("gen-pathways", "foundation_career_pathways", "healthcare", True))
SERVICE_TYPES = ("career_service_basic", "career_service_individualized", "work_experience",
                 "supportive_service", "follow_up")
SERVICE_WEIGHTS = (0.35, 0.25, 0.1, 0.2, 0.1)
TRAINING_SERVICES = ("training_occupational_skills", "training_on_the_job",
                     "training_apprenticeship", "training_customized")
CREDENTIALS = ("occupational_certificate", "occupational_certification",
               "occupational_licensure", "secondary_diploma_or_equivalent", "associate_degree")
COMPETENCIES = ("reading", "math", "digital_literacy", "workplace_readiness")
NAICS = ("62", "54", "31-33", "23", "22", "52", "48-49", "44-45", "72")
EXCLUSIONS = ("institutionalized", "health_medical", "deceased", "reserve_forces_active_duty")
#: Partners that report program costs by month (the others by quarter, once it is over);
#: COST_NONE sends no costs at all, so its programs get no cost figure.
COST_MONTHLY = frozenset({"workforce_board", "youth_dept", "northend_nonprofit"})
COST_NONE = frozenset({"civic_assoc"})
#: Programs that braid a second funding stream into their costs: code -> (stream, share).
BRAIDED = {"cc-nursing": ("wioa_adult", 0.3), "ne-pathways-hc": ("wioa_adult", 0.25)}
COST_SEED = 0xC0575  # program costs' own random stream: [seed, COST_SEED]


def _month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def _period_index(period: str) -> int:
    return _month_index(int(period[:4]), int(period[5:7]))


def _date(month_index: int, rng: np.random.Generator) -> str:
    year, month = divmod(month_index, 12)
    return dt.date(year, month + 1, int(rng.integers(1, 29))).isoformat()


def _quarter(qi: int) -> str:
    return f"{qi // 4}Q{qi % 4 + 1}"


def contract_columns(dataset: str) -> tuple[str, ...] | None:
    """Property names of ``data_contracts/<dataset>.yaml`` in order (None without contract)."""
    path = Path(data_contracts.__file__).parent / f"{dataset}.yaml"
    if not path.is_file():
        return None
    spec = yaml.safe_load(path.read_text())
    names = []
    for schema in spec.get("schema", []):
        names.extend(p["name"] for p in schema.get("properties", []))
    return tuple(names) or None


def _align(dataset: str, rows: list[dict]) -> tuple[tuple[str, ...], list[list[str]]]:
    """Rows in the contract's column order (renaming by alias; unknown contract columns empty)."""
    columns = contract_columns(dataset) or DEFAULT_COLUMNS[dataset]
    source_for = {}
    for column in columns:
        if column in DEFAULT_COLUMNS[dataset]:
            source_for[column] = column
            continue
        for ours, alternatives in ALIASES.items():
            if column in alternatives and ours in DEFAULT_COLUMNS[dataset]:
                source_for[column] = ours
                break
    out = [["" if row.get(source_for.get(c)) is None else str(row.get(source_for.get(c)))
            for c in columns] for row in rows]
    return columns, out


def _write(path: Path, dataset: str, rows: list[dict]) -> int:
    columns, values = _align(dataset, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(values)
    return len(values)


@dataclass
class _Enrollment:
    partner_id: str
    record_id: str
    program: Program
    entry_mi: int
    exit_mi: int | None
    exclusion: str | None
    events: dict[str, list[tuple[int, dict]]] = field(default_factory=lambda: defaultdict(list))


def _read_identities(out_dir: Path) -> dict[tuple[str, str], dict]:
    identities: dict[tuple[str, str], dict] = {}
    for path in sorted((out_dir / "landing").glob("*/*/participants.csv")):
        partner_id = path.parent.parent.name
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                key = (partner_id, row.get("partner_record_id", ""))
                identities.setdefault(key, row)
    return identities


def generate_outcomes(out_dir: str | Path, truth_csv: str | Path, *, seed: int) -> dict:
    """Write synthetic outcome drops for the persons in ``truth_csv``.

    Args:
        out_dir: Workspace-like root holding ``landing/<partner>/<period>/participants.csv``.
        truth_csv: Record truth (``partner_id, period, partner_record_id, true_person_id``).
        seed: Seed; the same inputs and seed give byte-identical files.

    Returns:
        Rows written per dataset, and ``persons``, ``persons_without_ssn``.
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    with Path(truth_csv).open(newline="", encoding="utf-8") as fh:
        truth = sorted(
            (r["partner_id"], r["period"], r["partner_record_id"], r["true_person_id"])
            for r in csv.DictReader(fh)
        )
    periods = sorted({t[1] for t in truth})
    if not periods:
        return {}
    last_mi = _period_index(periods[-1])
    identities = _read_identities(out_dir)

    record_periods: dict[tuple[str, str], list[str]] = defaultdict(list)
    record_person: dict[tuple[str, str], str] = {}
    for partner_id, period, record_id, person in truth:
        record_periods[(partner_id, record_id)].append(period)
        record_person[(partner_id, record_id)] = person
    persons = sorted(set(record_person.values()))
    ability = {p: float(rng.beta(6, 2.5)) for p in persons}  # chance employed in a quarter
    base_wage = {p: float(rng.lognormal(np.log(7200), 0.35)) for p in persons}

    enrollments: list[_Enrollment] = []
    for key in sorted(record_periods):
        partner_id, record_id = key
        first_mi = _period_index(min(record_periods[key]))
        catalog = PROGRAMS.get(partner_id, DEFAULT_PROGRAMS)
        program = catalog[int(rng.integers(len(catalog)))]
        entry_mi = int(rng.integers(_month_index(*FIRST_MONTH), first_mi + 1))
        length = int(rng.integers(2, 13)) if program.funding_stream != "summer_youth_employment" \
            else 2
        exit_mi = entry_mi + length if entry_mi + length <= last_mi else None
        exclusion = (EXCLUSIONS[int(rng.integers(len(EXCLUSIONS)))]
                     if exit_mi is not None and rng.random() < 0.02 else None)
        enr = _Enrollment(partner_id, record_id, program, entry_mi, exit_mi, exclusion)
        end_mi = exit_mi if exit_mi is not None else last_mi
        _add_events(enr, end_mi, last_mi, rng, ability[record_person[key]])
        enrollments.append(enr)

    counts: dict[str, int] = defaultdict(int)
    buffer: dict[tuple[Path, str], list[dict]] = defaultdict(list)
    by_record = {(e.partner_id, e.record_id): e for e in enrollments}
    for key in sorted(record_periods):
        enr = by_record[key]
        seen = sorted(set(record_periods[key]))
        for i, period in enumerate(seen):
            p_mi = _period_index(period)
            low = -1 if i == 0 else p_mi - 1  # first drop: history; later: the month only
            folder = out_dir / "landing" / enr.partner_id / period
            buffer[(folder, "enrollments")].append(_enrollment_row(enr, p_mi, seed))
            for dataset, items in enr.events.items():
                for month, row in items:
                    if low < month <= p_mi:
                        buffer[(folder, dataset)].append(row)
    # wages
    trained = defaultdict(list)
    exits = defaultdict(list)
    for enr in enrollments:
        person = record_person[(enr.partner_id, enr.record_id)]
        exits[person].append((enr.entry_mi, enr.exit_mi))
        if enr.program.training:
            trained[person].append(enr.exit_mi if enr.exit_mi is not None else 10**9)
    identity_for = _wage_identities(record_person, identities)
    wage_first_qi = WAGE_FIRST_QUARTER[0] * 4 + WAGE_FIRST_QUARTER[1] - 1
    period_last_qi = {p: (_period_index(p) - WAGE_LAG_MONTHS) // 3 for p in periods}
    wage_rows: list[tuple[int, dict]] = []
    for person in persons:
        identity = identity_for.get(person)
        rows = _wage_history(person, exits[person], trained[person], ability[person],
                             base_wage[person], wage_first_qi, max(period_last_qi.values()), rng)
        if identity is None:
            continue
        for qi, employer, amount in rows:
            wage_rows.append((qi, {**identity, "year_quarter": _quarter(qi),
                                   "employer_id": employer, "wages": f"{amount:.2f}"}))
    previous = wage_first_qi - 1
    for period in periods:
        upto = period_last_qi[period]
        rows = [r for qi, r in wage_rows if previous < qi <= upto]
        if rows:
            buffer[(out_dir / "landing" / STATE_WAGE_PARTNER / period, "wages")].extend(rows)
        previous = max(previous, upto)
    partner_periods: dict[str, list[str]] = defaultdict(list)
    for partner_id, period, _record, _person in truth:
        if period not in partner_periods[partner_id]:
            partner_periods[partner_id].append(period)
    for (partner_id, period), rows in program_costs(enrollments, partner_periods,
                                                    seed=seed).items():
        buffer[(out_dir / "landing" / partner_id / period, "program_costs")].extend(rows)
    for (folder, dataset), rows in sorted(buffer.items()):
        counts[dataset] += _write(folder / f"{dataset}.csv", dataset, rows)
    counts["persons"] = len(persons)
    counts["persons_without_ssn"] = len(persons) - len(identity_for)
    return dict(counts)


def _enrollment_row(enr: _Enrollment, period_mi: int, seed: int) -> dict:
    """The enrollment as the partner reports it at the end of ``period_mi`` (stable days)."""
    exited = enr.exit_mi is not None and enr.exit_mi <= period_mi
    day_rng = np.random.default_rng(
        [seed, zlib.crc32(f"{enr.partner_id}:{enr.record_id}".encode())])
    return {
        "partner_record_id": enr.record_id,
        "program_id": enr.program.code,
        "funding_stream": enr.program.funding_stream,
        "sector": enr.program.sector,
        "entry_date": _date(enr.entry_mi, day_rng),
        "exit_date": _date(enr.exit_mi, day_rng) if exited else None,
        "exit_exclusion_reason": enr.exclusion if exited else None,
    }


def _add_events(enr: _Enrollment, end_mi: int, last_mi: int, rng: np.random.Generator,
                ability: float) -> None:
    rid = enr.record_id
    months = list(range(enr.entry_mi, end_mi + 1))
    for _ in range(int(rng.choice([0, 1, 1, 2, 2, 3, 4]))):
        month = months[int(rng.integers(len(months)))]
        kind = SERVICE_TYPES[int(rng.choice(len(SERVICE_TYPES), p=SERVICE_WEIGHTS))]
        amount = f"{rng.integers(25, 400)}.00" if kind == "supportive_service" else None
        enr.events["services"].append((month, {
            "partner_record_id": rid, "program_id": enr.program.code,
            "service_date": _date(month, rng), "service_type": kind, "amount": amount}))
    if not enr.program.training:
        return
    training = TRAINING_SERVICES[int(rng.integers(len(TRAINING_SERVICES)))]
    if rng.random() < 0.9:
        enr.events["services"].append((enr.entry_mi, {
            "partner_record_id": rid, "program_id": enr.program.code,
            "service_date": _date(enr.entry_mi, rng), "service_type": training,
            "amount": f"{rng.integers(800, 4000)}.00"}))
    competency = COMPETENCIES[int(rng.integers(len(COMPETENCIES)))]
    score = int(rng.integers(1, 4))
    enr.events["assessments"].append((enr.entry_mi, {
        "partner_record_id": rid, "competency": competency, "score": score,
        "assessment_date": _date(enr.entry_mi, rng), "assessor_role": "instructor"}))
    if end_mi > enr.entry_mi and rng.random() < 0.75:
        later = int(rng.integers(enr.entry_mi + 1, end_mi + 1))
        gained = min(4, score + int(rng.random() < 0.6 + 0.3 * ability))
        enr.events["assessments"].append((later, {
            "partner_record_id": rid, "competency": competency, "score": gained,
            "assessment_date": _date(later, rng), "assessor_role": "instructor"}))
    if enr.exit_mi is not None and rng.random() < 0.45 + 0.3 * ability:
        month = min(last_mi, enr.exit_mi + int(rng.integers(-1, 7)))
        kind = CREDENTIALS[int(rng.integers(len(CREDENTIALS)))]
        enr.events["credentials"].append((month, {
            "partner_record_id": rid, "credential_type": kind,
            "credential_name": kind.replace("_", " "), "issuer": "Synthetic Issuer",
            "date_attained": _date(month, rng)}))
    if enr.exit_mi is not None and enr.exit_mi + 1 <= last_mi and rng.random() < 0.5:
        start = min(last_mi, enr.exit_mi + int(rng.integers(0, 4)))
        enr.events["employment"].append((start, {
            "partner_record_id": rid, "employer_name": "",
            "naics_sector": NAICS[int(rng.integers(len(NAICS)))],
            "start_date": _date(start, rng), "end_date": None,
            "hourly_wage": f"{rng.uniform(15.5, 38):.2f}",
            "weekly_hours": str(int(rng.choice([20, 30, 35, 40, 40, 40])))}))


def _wage_identities(record_person: dict, identities: dict) -> dict[str, dict]:
    """Identity fields per person: the first of the person's records that carries an SSN."""
    chosen: dict[str, dict] = {}
    for key in sorted(record_person):
        person = record_person[key]
        row = identities.get(key)
        if person in chosen or row is None or not (row.get("ssn") or "").strip():
            continue
        chosen[person] = {"ssn": row.get("ssn", ""), "first_name": row.get("first_name", ""),
                          "last_name": row.get("last_name", ""),
                          "date_of_birth": row.get("date_of_birth", "")}
    return chosen


def _wage_history(person: str, spells: list, trained_exits: list, ability: float,
                  base: float, first_qi: int, last_qi: int,
                  rng: np.random.Generator) -> list[tuple[int, str, float]]:
    del person
    rows = []
    employer = f"EMP{int(rng.integers(1, 400)):04d}"
    employed = rng.random() < 0.5
    for qi in range(first_qi, last_qi + 1):
        q_start, q_end = qi * 3, qi * 3 + 2
        in_program = any(s <= q_end and (e is None or e >= q_start) for s, e in spells)
        after_training = any(e is not None and e < q_start for e in trained_exits)
        after_any_exit = any(e is not None and e < q_start for _s, e in spells)
        p = ability * (0.55 if in_program else 1.0)
        if after_any_exit:
            p = min(0.97, p + 0.08 + (0.07 if after_training else 0.0))
        stay = rng.random() < (0.88 if employed else p)
        if employed and not stay:
            employed = False
        elif not employed and rng.random() < p:
            employed = True
            employer = f"EMP{int(rng.integers(1, 400)):04d}"
        if not employed:
            continue
        growth = 1.18 if after_training else 1.0
        amount = base * growth * float(rng.normal(1.0, 0.12)) * (0.6 if in_program else 1.0)
        rows.append((qi, employer, max(amount, 150.0)))
        if rng.random() < 0.06:  # a second, short job
            rows.append((qi, f"EMP{int(rng.integers(1, 400)):04d}",
                         float(rng.uniform(300, 2500))))
    return rows


def program_costs(enrollments: list[_Enrollment], partner_periods: dict[str, list[str]], *,
                  seed: int) -> dict[tuple[str, str], list[dict]]:
    """Cost rows per (partner, drop period): the first drop carries the history from the
    program's first entry, later drops the months (or whole quarters) since.

    Per program month: staff = a base plus a case-management cost per active participant;
    training = tuition per entry (training programs); supportive services = what was paid to
    participants plus 15% handling. A braided program splits each amount between its two
    funding streams. Monthly reporters send one row per month, stream and category; the
    others one per quarter, once the quarter has ended by the drop's month.
    """
    rng = np.random.default_rng([seed, COST_SEED])
    by_program: dict[tuple[str, str], list[_Enrollment]] = defaultdict(list)
    for enr in enrollments:
        by_program[(enr.partner_id, enr.program.code)].append(enr)
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for (partner_id, code), items in sorted(by_program.items()):
        periods = sorted(partner_periods.get(partner_id, ()))
        if partner_id in COST_NONE or not periods:
            continue
        program = items[0].program
        base = float(rng.uniform(1500, 4000))
        per_head = float(rng.uniform(250, 600))
        tuition = float(rng.uniform(1800, 4800)) if program.training else 0.0
        last_mi = _period_index(periods[-1])
        first_mi = min(e.entry_mi for e in items)
        monthly: dict[int, dict[str, float]] = {}
        for month in range(first_mi, last_mi + 1):
            active = sum(1 for e in items if e.entry_mi <= month
                         and (e.exit_mi is None or e.exit_mi >= month))
            entries = sum(1 for e in items if e.entry_mi == month)
            paid = sum(float(row["amount"]) for e in items for m, row in e.events["services"]
                       if m == month and row["service_type"] == "supportive_service"
                       and row.get("amount"))
            monthly[month] = {
                "staff": base + per_head * active,
                "training": tuition * entries * float(rng.uniform(0.9, 1.1)),
                "supportive_services": paid * 1.15,
            }
        streams = [(program.funding_stream, 1.0)]
        if code in BRAIDED:
            other, share = BRAIDED[code]
            streams = [(program.funding_stream, 1.0 - share), (other, share)]
        monthly_reporter = partner_id in COST_MONTHLY
        # (cost period label, the month it is complete by, amounts)
        cost_periods: list[tuple[str, int, dict[str, float]]] = []
        if monthly_reporter:
            for month, amounts in monthly.items():
                year, m = divmod(month, 12)
                cost_periods.append((f"{year:04d}-{m + 1:02d}", month, amounts))
        else:
            for qi in range(first_mi // 3, last_mi // 3 + 1):
                if qi * 3 + 2 > last_mi:
                    break  # the quarter is not over by the last drop
                amounts = {k: sum(monthly.get(m, {}).get(k, 0.0) for m in range(qi * 3, qi * 3 + 3))
                           for k in ("staff", "training", "supportive_services")}
                cost_periods.append((_quarter(qi), qi * 3 + 2, amounts))
        for label, complete_mi, amounts in cost_periods:
            drop = next((p for p in periods if _period_index(p) >= complete_mi), None)
            if drop is None:
                continue
            for category, amount in amounts.items():
                for stream, share in streams:
                    if amount * share < 0.005:
                        continue
                    out[(partner_id, drop)].append({
                        "program_id": code, "cost_period": label,
                        "cost_amount": f"{amount * share:.2f}", "funding_stream": stream,
                        "cost_category": category})
    return dict(out)
