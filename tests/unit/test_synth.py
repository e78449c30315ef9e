"""Tests for the seeded synthetic partner extracts (pipelines/synthetic/participants.py)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest
from unidecode import unidecode

from pipelines.synthetic.participants import (
    CANONICAL_COLUMNS,
    CORRUPTION_CODES,
    PARTNERS,
    PERSONS_TRUTH_COLUMNS,
    TRUTH_COLUMNS,
    generate,
)

SEED = 11
PERSONS = 600
PERIODS = ["2026-09", "2026-10"]
DATE_PATTERNS = {
    "YYYY-MM-DD": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "MM/DD/YYYY": re.compile(r"^\d{2}/\d{2}/\d{4}$"),
    "YYYYMMDD": re.compile(r"^\d{8}$"),
}


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("synth")
    summary = generate(out, seed=SEED, persons=PERSONS, periods=PERIODS)
    frames = []
    for partner_id in PARTNERS:
        for period in PERIODS:
            frame = _read(out / "landing" / partner_id / period / "participants.csv")
            frames.append(frame.assign(partner_id=partner_id, period=period))
    records = pd.concat(frames, ignore_index=True)
    truth = _read(out / "truth" / "participants_truth.csv")
    persons = _read(out / "truth" / "persons_truth.csv")
    joined = records.merge(truth, on=["partner_id", "period", "partner_record_id"],
                           validate="one_to_one")
    joined = joined.merge(persons, on="true_person_id", suffixes=("", "_true"),
                          validate="many_to_one")
    return {"out": out, "summary": summary, "records": records, "truth": truth,
            "persons": persons, "joined": joined}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_same_seed_gives_byte_identical_files(synthetic: dict, tmp_path: Path) -> None:
    generate(tmp_path / "again", seed=SEED, persons=PERSONS, periods=PERIODS)
    first, second = _files(synthetic["out"]), _files(tmp_path / "again")
    assert first.keys() == second.keys()
    assert first == second
    generate(tmp_path / "other", seed=SEED + 1, persons=PERSONS, periods=PERIODS)
    other = _files(tmp_path / "other")
    assert other["truth/participants_truth.csv"] != first["truth/participants_truth.csv"]


def test_partner_ids_and_profiles_are_fixed() -> None:
    assert list(PARTNERS) == [
        "workforce_board", "youth_dept", "northend_nonprofit", "southend_nonprofit",
        "civic_assoc", "community_college", "public_schools",
    ]
    for profile in PARTNERS.values():
        assert profile.display_name
        assert 14 <= profile.age_min < profile.age_max <= 64
        assert 0 < profile.ssn_coverage < 1
        assert 0 < profile.share < 1
        assert profile.date_format in DATE_PATTERNS


def test_layout_and_headers(synthetic: dict) -> None:
    out = synthetic["out"]
    assert sorted(p.name for p in (out / "landing").iterdir()) == sorted(PARTNERS)
    for partner_id in PARTNERS:
        assert sorted(p.name for p in (out / "landing" / partner_id).iterdir()) == PERIODS
        for period in PERIODS:
            path = out / "landing" / partner_id / period / "participants.csv"
            header = path.read_text(encoding="utf-8").splitlines()[0]
            assert header == ",".join(CANONICAL_COLUMNS)
    assert not list((out / "landing").rglob("*truth*"))
    truth_dir = out / "truth"
    assert sorted(p.name for p in truth_dir.iterdir()) == [
        "README.txt", "participants_truth.csv", "persons_truth.csv"]
    assert tuple(synthetic["truth"].columns) == TRUTH_COLUMNS
    assert tuple(synthetic["persons"].columns) == PERSONS_TRUTH_COLUMNS
    assert "true_person_id" in (truth_dir / "README.txt").read_text(encoding="utf-8")


def test_summary_counts_match_files(synthetic: dict) -> None:
    summary, records = synthetic["summary"], synthetic["records"]
    assert summary.total_records == len(records)
    for partner_id in PARTNERS:
        for period in PERIODS:
            rows = ((records.partner_id == partner_id) & (records.period == period)).sum()
            assert summary.records[partner_id][period] == rows > 0
    assert summary.persons == PERSONS == len(synthetic["persons"])


def test_truth_covers_every_record_and_ids_are_unique_per_file(synthetic: dict) -> None:
    records, truth = synthetic["records"], synthetic["truth"]
    key = ["partner_id", "period", "partner_record_id"]
    assert not records.duplicated(key).any()
    assert not truth.duplicated(key).any()
    assert set(map(tuple, records[key].to_numpy())) == set(map(tuple, truth[key].to_numpy()))
    assert set(truth.true_person_id) <= set(synthetic["persons"].true_person_id)
    assert (records.partner_record_id != "").all()
    for column in ("first_name", "last_name", "date_of_birth"):
        assert (records[column].str.strip() != "").all()


def test_corruption_codes_are_known_and_present(synthetic: dict) -> None:
    codes = {c for value in synthetic["truth"].corruptions for c in value.split(";") if c}
    assert codes <= set(CORRUPTION_CODES)
    expected = {
        "typo_first_name", "typo_last_name", "nickname", "accent_dropped", "dob_day_month_swap",
        "ssn_missing", "ssn_placeholder", "ssn_typo", "moved_address", "phone_missing",
        "email_missing", "case_whitespace", "duplicate_registration",
    }
    assert expected <= codes
    assert codes & {"surname_hyphenated", "surname_spaced", "surname_first_only"}
    assert (synthetic["truth"].corruptions == "").mean() > 0.3


def _parse(value: str, partner_id: str) -> dt.date:
    return dt.datetime.strptime(value, PARTNERS[partner_id].strftime).date()


def test_clean_records_agree_with_the_true_person(synthetic: dict) -> None:
    clean = synthetic["joined"][synthetic["joined"].corruptions == ""]
    assert len(clean) > 100
    for row in clean.itertuples():
        assert row.first_name.lower() == row.first_name_true.lower()
        assert row.last_name.lower() == row.last_name_true.lower()
        assert _parse(row.date_of_birth, row.partner_id).isoformat() == row.date_of_birth_true
        assert row.ssn.replace("-", "") == row.ssn_true.replace("-", "")


def test_corrupted_fields_match_their_codes(synthetic: dict) -> None:
    joined = synthetic["joined"]
    swapped = joined[joined.corruptions.str.contains("dob_day_month_swap")]
    assert len(swapped)
    for row in swapped.itertuples():
        true = dt.date.fromisoformat(row.date_of_birth_true)
        assert _parse(row.date_of_birth, row.partner_id) == true.replace(
            month=true.day, day=true.month)
    ssn_typos = joined[joined.corruptions.str.contains("ssn_typo")]
    assert len(ssn_typos)
    for row in ssn_typos.itertuples():
        given, true = row.ssn.replace("-", ""), row.ssn_true.replace("-", "")
        assert sum(a != b for a, b in zip(given, true, strict=True)) == 1
    placeholders = joined[joined.corruptions.str.contains("ssn_placeholder")]
    assert set(placeholders.ssn.str.replace("-", "")) <= {"000000000", "999999999", "123456789"}


def test_true_ssns_have_a_valid_pattern(synthetic: dict) -> None:
    ssns = synthetic["persons"].ssn[synthetic["persons"].ssn != ""]
    assert ssns.is_unique
    for ssn in ssns:
        area, group, serial = ssn.split("-")
        assert 1 <= int(area) <= 899 and area != "666"
        assert group != "00" and serial != "0000"
        assert ssn not in {"078-05-1120", "219-09-9999", "457-55-5462", "123-45-6789"}


def test_addresses_and_phones_look_like_greater_hartford(synthetic: dict) -> None:
    records = synthetic["records"]
    assert records.zip.str.fullmatch(r"06[01]\d\d").all()
    assert records.state.str.strip().str.upper().eq("CT").all()
    digits = records.phone.str.replace(r"\D", "", regex=True)
    assert digits[digits != ""].str[:3].isin(["860", "959"]).all()
    assert {"Hartford", "East Hartford", "West Hartford", "New Britain"} <= set(
        records.city.str.strip().str.title())


def test_hard_non_matches_are_present(synthetic: dict) -> None:
    persons = synthetic["persons"]
    in_records = set(synthetic["truth"].true_person_id)

    twins = persons[persons.hard_case == "twin"].groupby("hard_case_group")
    assert twins.ngroups >= 2
    for _, pair in twins:
        assert len(pair) == 2 and set(pair.true_person_id) <= in_records
        a, b = pair.iloc[0], pair.iloc[1]
        assert a.last_name == b.last_name and a.date_of_birth == b.date_of_birth
        assert a.household_id == b.household_id and a.street_address == b.street_address
        assert unidecode(a.first_name).lower() != unidecode(b.first_name).lower()
        assert a.ssn != b.ssn or a.ssn == ""

    jr_sr = persons[persons.hard_case == "jr_sr"].groupby("hard_case_group")
    assert jr_sr.ngroups >= 2
    for _, pair in jr_sr:
        assert len(pair) == 2 and set(pair.true_person_id) <= in_records
        assert sorted(pair.suffix) == ["Jr", "Sr"]
        assert pair.first_name.nunique() == pair.last_name.nunique() == 1
        assert pair.household_id.nunique() == 1 and pair.date_of_birth.nunique() == 2

    common = persons[persons.hard_case == "common_name"]
    names = common.first_name.map(unidecode) + " " + common.last_name.map(unidecode)
    for name in ("Jose Rodriguez", "Maria Rivera", "Michael Smith"):
        group = common[names == name]
        assert len(group) >= 3 and group.date_of_birth.is_unique
        assert set(group.true_person_id) <= in_records


def test_jr_sr_suffix_sometimes_missing(synthetic: dict) -> None:
    jr_sr = synthetic["joined"][synthetic["joined"].hard_case == "jr_sr"]
    assert jr_sr.corruptions.str.contains("suffix_missing").any()
    assert (~jr_sr.corruptions.str.contains("suffix")).any()


def test_duplicate_registrations_within_a_partner(synthetic: dict) -> None:
    truth = synthetic["truth"]
    per_person = truth.groupby(["partner_id", "period", "true_person_id"]).partner_record_id
    doubled = per_person.nunique()
    assert (doubled == 2).sum() >= 5
    assert doubled.max() == 2
    flagged = truth[truth.corruptions.str.contains("duplicate_registration")]
    assert len(flagged) == (doubled == 2).sum()


def test_second_month_carries_most_records_over(synthetic: dict) -> None:
    truth = synthetic["truth"]
    first, second = (truth[truth.period == p] for p in PERIODS)
    for partner_id in PARTNERS:
        ids_1 = set(first.partner_record_id[first.partner_id == partner_id])
        ids_2 = set(second.partner_record_id[second.partner_id == partner_id])
        carried = len(ids_1 & ids_2) / len(ids_1)
        assert 0.7 <= carried <= 0.97, (partner_id, carried)
        assert ids_2 - ids_1, partner_id
    merged = first.merge(second, on=["partner_id", "partner_record_id"], suffixes=("_1", "_2"))
    assert (merged.true_person_id_1 == merged.true_person_id_2).all()
    assert set(second.record_status) == {"new", "carried", "carried_updated"}
    assert set(first.record_status) == {"new"}
    new_persons = set(second.true_person_id) - set(first.true_person_id)
    assert new_persons
    assert abs(synthetic["summary"].carryover_rate - len(merged) / len(first)) < 1e-3


def test_carried_records_change_some_fields(synthetic: dict) -> None:
    records = synthetic["records"]
    first, second = (records[records.period == p] for p in PERIODS)
    merged = first.merge(second, on=["partner_id", "partner_record_id"], suffixes=("_1", "_2"))
    moved = merged.street_address_1 != merged.street_address_2
    new_phone = merged.phone_1 != merged.phone_2
    assert moved.sum() > 0 and new_phone.sum() > 0
    assert (~moved).mean() > 0.9


def test_age_ranges_respected_by_true_dob(synthetic: dict) -> None:
    joined = synthetic["joined"]
    for row in joined[["partner_id", "period", "date_of_birth_true"]].itertuples():
        dob = dt.date.fromisoformat(row.date_of_birth_true)
        start = dt.date(int(row.period[:4]), int(row.period[5:]), 1)
        age = start.year - dob.year - ((start.month, start.day) < (dob.month, dob.day))
        profile = PARTNERS[row.partner_id]
        assert profile.age_min <= age <= profile.age_max, (row, age)


def test_each_partner_uses_its_date_format(synthetic: dict) -> None:
    records = synthetic["records"]
    used = set()
    for partner_id, profile in PARTNERS.items():
        dobs = records.date_of_birth[records.partner_id == partner_id]
        assert dobs.str.fullmatch(DATE_PATTERNS[profile.date_format].pattern[1:-1]).all()
        used.add(profile.date_format)
    assert used == set(DATE_PATTERNS)


def test_many_persons_are_served_by_several_partners(synthetic: dict) -> None:
    truth = synthetic["truth"]
    partners_per_person = truth.groupby("true_person_id").partner_id.nunique()
    assert partners_per_person.max() <= 4
    assert (partners_per_person >= 2).mean() > 0.3


def test_names_include_latino_compound_surnames_and_accents(synthetic: dict) -> None:
    persons = synthetic["persons"]
    assert persons.last_name.str.contains(r"\w[ -]\w").mean() > 0.05
    assert persons.last_name.str.contains("-").any()
    assert (persons.first_name + persons.last_name).map(lambda s: not s.isascii()).mean() > 0.1


@pytest.mark.parametrize(
    "periods", [[], ["2026-9"], ["2026-10", "2026-09"], ["2026-09", "2026-09"]]
)
def test_bad_periods_are_rejected(tmp_path: Path, periods: list[str]) -> None:
    with pytest.raises(ValueError, match="period"):
        generate(tmp_path, periods=periods, persons=PERSONS)


def test_three_periods(tmp_path: Path) -> None:
    summary = generate(tmp_path, seed=3, persons=300, periods=["2026-08", "2026-09", "2026-10"])
    assert all(len(by_period) == 3 for by_period in summary.records.values())
    truth = _read(tmp_path / "truth" / "participants_truth.csv")
    assert truth.period.nunique() == 3
