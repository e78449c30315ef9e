"""Tests for linkage.normalize (names, dates, SSNs, contact fields, addresses, frame shape)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from linkage.normalize import (
    OUTPUT_COLUMNS,
    date_issue,
    normalize_participants,
    parse_date,
    ssn_issue,
)

AS_OF = dt.date(2024, 6, 1)


def normalize_one(**fields: object) -> dict[str, object]:
    """Normalize a single raw record given as keyword columns; return its output row."""
    raw = pd.DataFrame({name: [value] for name, value in fields.items()}, index=["r1"])
    return normalize_participants(raw, as_of=AS_OF).loc["r1"].to_dict()


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_name", "expected"),
    [
        ("José", "jose"),
        ("Zoë", "zoe"),
        ("  MARÍA  ", "maria"),
        ("Mary-Ann", "maryann"),
        ("Jean Luc", "jeanluc"),
        ("D'Andre", "dandre"),
    ],
)
def test_given_name_ascii_lowercase_letters_only(first_name: str, expected: str) -> None:
    assert normalize_one(first_name=first_name)["given_name"] == expected


def test_given_name_without_letters_is_none() -> None:
    row = normalize_one(first_name="--- ")
    assert row["given_name"] is None
    assert row["given_name_canonical"] is None
    assert row["given_name_phonetic"] is None


@pytest.mark.parametrize(
    ("last_name", "family", "first", "last"),
    [
        ("O'Brien", "obrien", "obrien", "obrien"),
        ("Garcia-Lopez", "garcialopez", "garcia", "lopez"),
        ("Garcia Lopez", "garcialopez", "garcia", "lopez"),
        ("de la Cruz", "delacruz", "cruz", "cruz"),
        ("Van Der Berg", "vanderberg", "berg", "berg"),
        ("St. John", "stjohn", "john", "john"),
        ("Müller", "muller", "muller", "muller"),
        ("Da", "da", "da", "da"),
    ],
)
def test_compound_surnames(last_name: str, family: str, first: str, last: str) -> None:
    row = normalize_one(last_name=last_name)
    assert (row["family_name"], row["family_name_first"], row["family_name_last"]) == (
        family,
        first,
        last,
    )


@pytest.mark.parametrize(
    ("last_name", "suffix_column", "family", "suffix"),
    [
        ("Smith Jr.", None, "smith", "JR"),
        ("Smith, Jr", None, "smith", "JR"),
        ("Smith III", None, "smith", "III"),
        ("Smith iv", None, "smith", "IV"),
        ("Garcia-Lopez Sr", None, "garcialopez", "SR"),
        ("Smith", "Jr.", "smith", "JR"),
        ("Smith", "jr", "smith", "JR"),
        ("Smith", "2nd", "smith", "II"),
        ("Smith", "3rd", "smith", "III"),
        ("Smith", "Senior", "smith", "SR"),
        ("Smith", "Esq", "smith", None),
        ("Smith Jr", "III", "smith", "III"),
        ("Jr", None, "jr", None),
    ],
)
def test_suffix_from_column_or_trailing(
    last_name: str, suffix_column: str | None, family: str, suffix: str | None
) -> None:
    row = normalize_one(last_name=last_name, suffix=suffix_column)
    assert row["family_name"] == family
    assert row["suffix"] == suffix


@pytest.mark.parametrize(
    ("first_name", "canonical"),
    [
        ("Bill", "william"),
        ("billy", "william"),
        ("Bob", "robert"),
        ("Liz", "elizabeth"),
        ("beth", "elizabeth"),
        ("Jim", "james"),
        ("William", "william"),
        ("Robert", "robert"),
        ("Elizabeth", "elizabeth"),
        ("Alexander", "alexander"),
        ("Maria", "maria"),
        ("Xochitl", "xochitl"),
    ],
)
def test_nickname_canonicalisation(first_name: str, canonical: str) -> None:
    assert normalize_one(first_name=first_name)["given_name_canonical"] == canonical


def test_middle_name_and_initial() -> None:
    row = normalize_one(middle_name="Ánne-Marie")
    assert row["middle_name"] == "annemarie"
    assert row["middle_initial"] == "a"
    assert normalize_one(middle_name="")["middle_initial"] is None


def test_phonetic_codes_are_nysiis() -> None:
    row = normalize_one(first_name="Catherine", last_name="Garcia-Lopez")
    assert row["given_name_phonetic"] == "CATARAN"
    assert row["family_name_phonetic"] == "GARCALAP"
    assert normalize_one(first_name="Katherine")["given_name_phonetic"] == "CATARAN"


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "1990-01-31", "01/31/1990", "19900131", " 1990-01-31 ", "1/31/1990", "1990-1-31",
    "1990/01/31", "1-31-1990", "Jan 31 1990", "January 31, 1990", "31-Jan-1990",
    "1990-01-31T00:00:00", "1990-01-31 00:00:00", "1990-01-31T00:00:00.000Z",
    "1/31/1990 0:00", "1/31/1990 12:00:00 AM", "1990-01-31T09:30:00-05:00",
])
def test_parse_date_accepted_forms(text: str) -> None:
    assert parse_date(text) == dt.date(1990, 1, 31)


@pytest.mark.parametrize(("text", "issue"), [
    ("31/01/1990", "day_first"), ("31.01.1990", "day_first"), ("01.31.1990", "day_first"),
    ("1/31/90", "two_digit_year"), ("31-Jan-90", "two_digit_year"),
    ("32904", "excel_serial"), ("2001-02-30", "impossible"), ("13/13/1990", "impossible"),
    ("Foo 31 1990", "unparseable"), ("1990", "unparseable"), ("", "missing"),
    (None, "missing"),
])
def test_parse_date_refuses_and_says_why(text: str | None, issue: str) -> None:
    assert parse_date(text) is None
    assert date_issue(text) == issue


@pytest.mark.parametrize(
    ("text", "dob", "issue"),
    [
        ("1990-01-31", "1990-01-31", None),
        ("02/29/2000", "2000-02-29", None),
        ("2/29/2000", "2000-02-29", None),
        ("20240601", "2024-06-01", None),
        (None, None, "missing"),
        ("   ", None, "missing"),
        ("Jan 31 1990", "1990-01-31", None),
        ("1990-1-31", "1990-01-31", None),
        ("1/31/90", None, "two_digit_year"),
        ("31/01/1990", None, "day_first"),
        ("noon", None, "unparseable"),
        ("2001-02-30", None, "impossible"),
        ("1990-13-01", None, "impossible"),
        ("02/29/2001", None, "impossible"),
        ("2024-06-02", None, "future"),
        ("1914-06-01", "1914-06-01", None),
        ("1914-05-31", None, "too_old"),
    ],
)
def test_dob_and_dob_issue(text: str | None, dob: str | None, issue: str | None) -> None:
    row = normalize_one(date_of_birth=text)
    assert row["dob"] == dob
    assert row["dob_issue"] == issue


# --- SSN -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "issue"),
    [
        ("219-44-1234", None),
        ("219441234", None),
        (" 219 44 1234 ", None),
        (None, "missing"),
        ("", "missing"),
        ("12345678", "malformed"),
        ("2.12346E+08", "scientific_notation"),
        ("1234567890", "malformed"),
        ("N/A", "malformed"),
        ("000-00-0000", "placeholder"),
        ("999999999", "placeholder"),
        ("111-11-1111", "placeholder"),
        ("123-45-6789", "placeholder"),
        ("078-05-1120", "sample"),
        ("219-09-9999", "sample"),
        ("457-55-5462", "sample"),
        ("987-65-4325", "sample"),
        ("987-65-4321", "placeholder"),
        ("000-12-3456", "invalid_area"),
        ("666-12-3456", "invalid_area"),
        ("900-12-3456", "invalid_area"),
        ("999-93-1234", "invalid_area"),
        ("900-50-1234", "itin"),
        ("912-65-1234", "itin"),
        ("950-70-1234", "itin"),
        ("999-88-1234", "itin"),
        ("900-90-1234", "itin"),
        ("900-92-1234", "itin"),
        ("900-94-1234", "itin"),
        ("900-99-1234", "itin"),
        ("900-89-1234", "invalid_area"),
        ("123-00-4567", "invalid_group"),
        ("123-45-0000", "invalid_serial"),
    ],
)
def test_ssn_issue_categories(text: str | None, issue: str | None) -> None:
    assert ssn_issue(text) == issue
    row = normalize_one(ssn=text)
    assert row["ssn_issue"] == issue
    expected_ssn = "".join(ch for ch in text if ch.isdigit()) if issue is None else None
    assert row["ssn"] == expected_ssn


# --- sex, phone, email -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sex"),
    [
        ("F", "F"),
        ("female", "F"),
        ("W", "F"),
        ("m", "M"),
        (" Male ", "M"),
        ("x", "X"),
        ("Non-Binary", "X"),
        ("nonbinary", "X"),
        ("u", None),
        ("Unknown", None),
        ("", None),
    ],
)
def test_sex_codes(text: str, sex: str | None) -> None:
    assert normalize_one(sex=text)["sex"] == sex


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("(860) 247-1234", "+18602471234"),
        ("860.247.1234", "+18602471234"),
        ("+1 860 247 1234", "+18602471234"),
        ("1-860-247-1234", "+18602471234"),
        ("247-1234", None),
        ("12", None),
        ("not a phone", None),
        ("(123) 456-7890", None),
    ],
)
def test_phone_e164(text: str, phone: str | None) -> None:
    assert normalize_one(phone=text)["phone"] == phone


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("  Jose.Perez@Example.COM ", "jose.perez@example.com"),
        ("a+tag@sub.example.org", "a+tag@sub.example.org"),
        ("no-at-sign.example.com", None),
        ("two@@example.com", None),
        ("a@b@example.com", None),
        ("space in@example.com", None),
        ("user@localhost", None),
        ("user@example..com", None),
        ("user@.example.com", None),
    ],
)
def test_email(text: str, email: str | None) -> None:
    assert normalize_one(email=text)["email"] == email


# --- address ---------------------------------------------------------------------------------


def test_street_standardised_with_scourgify() -> None:
    row = normalize_one(
        street_address="123 north main street apt 4", city="Hartford", state="CT", zip="06103"
    )
    assert "123 N MAIN ST" in row["street"]
    assert row["street"] == "123 N MAIN ST APT 4"


def test_street_standardised_without_locality() -> None:
    assert normalize_one(street_address="45 south elm avenue")["street"] == "45 S ELM AVE"


def test_unparseable_street_falls_back_without_raising() -> None:
    row = normalize_one(street_address="  c/o   shelter,  p.o. box 12 ", zip="06103")
    assert row["street"] is not None
    assert row["street"] == row["street"].upper()
    assert "  " not in row["street"]
    assert row["street"] == "C/O SHELTER P O BOX 12"
    assert normalize_one(street_address="((((")["street"] is None


def test_fallback_for_garbage_street_is_uppercase() -> None:
    row = normalize_one(street_address="((( ))) main street", city="Hartford", state="CT")
    assert row["street"] == "MAIN ST"


def test_city_state_zip() -> None:
    row = normalize_one(city="  west   hartford ", state="Connecticut", zip="06107-1234")
    assert row["city"] == "WEST HARTFORD"
    assert row["state"] == "CT"
    assert row["zip5"] == "06107"
    assert row["zip3"] == "061"


@pytest.mark.parametrize(
    ("text", "zip5"),
    [
        ("06103", "06103"),
        ("06103-1234", "06103"),
        ("061031234", "06103"),
        ("6103", "06103"),
        ("00000", None),
        ("0610", "00610"),
        ("ABCDE", None),
        ("123456", None),
    ],
)
def test_zip5(text: str, zip5: str | None) -> None:
    row = normalize_one(zip=text)
    assert row["zip5"] == zip5
    assert row["zip3"] == (zip5[:3] if zip5 else None)


@pytest.mark.parametrize(
    ("text", "state"),
    [("ct", "CT"), ("Conn.", "CT"), ("new york", "NY"), ("PR", "PR"), ("XX", None), ("", None)],
)
def test_state_codes(text: str, state: str | None) -> None:
    assert normalize_one(state=text)["state"] == state


# --- frame shape -----------------------------------------------------------------------------


def test_missing_columns_entirely() -> None:
    raw = pd.DataFrame({"partner_record_id": ["a", "b"]}, index=[7, 3])
    out = normalize_participants(raw, as_of=AS_OF)
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert list(out.index) == [7, 3]
    assert out["dob_issue"].tolist() == ["missing", "missing"]
    assert out["ssn_issue"].tolist() == ["missing", "missing"]
    other = out.drop(columns=["dob_issue", "ssn_issue"])
    assert all(value is None for value in other.to_numpy().ravel())


def test_empty_frame() -> None:
    out = normalize_participants(pd.DataFrame(), as_of=AS_OF)
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert len(out) == 0


def test_nan_and_empty_strings_become_none() -> None:
    raw = pd.DataFrame(
        {
            "first_name": [np.nan, "", "Ann"],
            "last_name": [None, "  ", "Lee"],
            "email": [np.nan, "", "ann@example.com"],
            "phone": [np.nan, "", "8602471234"],
            "zip": [np.nan, "", "06103"],
        }
    )
    out = normalize_participants(raw, as_of=AS_OF)
    for column in ("given_name", "family_name", "email", "phone", "zip5", "street", "sex"):
        assert out[column].iloc[0] is None
        assert out[column].iloc[1] is None
    assert out.iloc[2][["given_name", "family_name", "email", "phone", "zip5"]].tolist() == [
        "ann",
        "lee",
        "ann@example.com",
        "+18602471234",
        "06103",
    ]


def test_same_index_preserved_and_input_untouched() -> None:
    index = pd.Index(["x9", "x2", "x5", "x2b"], name="row")
    raw = pd.DataFrame(
        {
            "first_name": ["Bill", "Bob", "Bill", "Liz"],
            "last_name": ["Smith Jr", "Jones", "Smith Jr", "Taylor"],
            "date_of_birth": ["1980-05-06", "05/06/1980", "19800506", "bad"],
        },
        index=index,
    )
    before = raw.copy()
    out = normalize_participants(raw, as_of=AS_OF)
    pd.testing.assert_index_equal(out.index, index)
    pd.testing.assert_frame_equal(raw, before)
    assert out["given_name_canonical"].tolist() == ["william", "robert", "william", "elizabeth"]
    assert out["dob"].tolist() == ["1980-05-06", "1980-05-06", "1980-05-06", None]
    assert out["suffix"].tolist() == ["JR", None, "JR", None]
    assert out.loc["x5", "family_name"] == "smith"


def test_repeated_values_map_consistently() -> None:
    raw = pd.DataFrame(
        {
            "first_name": ["José", "Jose", "JOSE", np.nan] * 50,
            "street_address": ["123 north main street apt 4", "123 N Main St Apt 4"] * 100,
            "zip": ["06103"] * 200,
        }
    )
    out = normalize_participants(raw, as_of=AS_OF)
    assert set(out["given_name"].dropna()) == {"jose"}
    assert out["given_name"].isna().sum() == 50
    assert set(out["street"]) == {"123 N MAIN ST APT 4"}


def test_output_is_object_dtype_with_real_none() -> None:
    out = normalize_participants(pd.DataFrame({"first_name": [np.nan, "Ann"]}), as_of=AS_OF)
    assert all(dtype is np.dtype(object) for dtype in out.dtypes)
    assert out["given_name"].iloc[0] is None


def test_duplicate_index_labels_preserved() -> None:
    raw = pd.DataFrame({"first_name": ["Bob", "Liz", "Bill"]}, index=[5, 5, 1])
    out = normalize_participants(raw, as_of=AS_OF)
    assert out.index.tolist() == [5, 5, 1]
    assert out["given_name_canonical"].tolist() == ["robert", "elizabeth", "william"]


def test_a_runs_memo_standardizes_each_address_and_phone_once_with_the_same_result() -> None:
    from linkage.normalize import ValueMemo

    streets = ["12 Main Street", "12 MAIN ST", "40 Park Terrace Apt 3", None, "9 Elm Rd"]
    phones = ["(860) 555-0101", "860.555.0199", None, "555-0101", "+1 860 555 0101"]

    def frame(rows: range) -> pd.DataFrame:
        return pd.DataFrame({
            "street_address": [streets[i % 5] for i in rows], "city": "Hartford",
            "state": "CT", "zip": "06106", "phone": [phones[(i * 3) % 5] for i in rows],
        }, index=[f"r{i}" for i in rows])

    memo = ValueMemo()
    first, second = frame(range(0, 7)), frame(range(5, 15))
    for raw in (first, second):  # the second file's values all came in the first
        pd.testing.assert_frame_equal(normalize_participants(raw, as_of=AS_OF, memo=memo),
                                      normalize_participants(raw, as_of=AS_OF))
    assert "Main" not in repr(memo) and "860" not in repr(memo)

    calls: list[list[str]] = []

    def upper(items: list[str]) -> list[str]:
        calls.append(items)
        return [item.upper() for item in items]

    small = ValueMemo(limit=2)
    assert small.map("f", ["a", "b", "c"], upper) == ["A", "B", "C"]
    assert small.map("f", ["a", "b", "c", "d"], upper) == ["A", "B", "C", "D"]
    assert calls == [["a", "b", "c"], ["c", "d"]]  # at most two remembered
    assert small.map("g", ["a"], upper) == ["A"] and calls[-1] == ["a"]  # fields apart
