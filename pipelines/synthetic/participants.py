"""Seeded synthetic participant extracts for the seven Greater Hartford partners.

One generator, three steps:

1. a population of true persons (Faker ``en_US``, ``es_MX``, ``pl_PL``, ``pt_BR``, ``vi_VN`` plus
   curated Puerto Rican names typical of Hartford) living at Hartford-area addresses, with the
   hard non-matches linkage must keep apart: twins, Jr/Sr father and son, very common names;
2. enrollments: each person is served by 1-4 partners whose age ranges fit, starting in the first
   period or later, leaving (exit or ageing out) between periods;
3. per period, each partner's extract: one record copy per registration, with the errors real
   intake has (typos, nicknames, accents, compound surnames, day/month swaps, SSN problems, stale
   addresses, missing contacts, case and whitespace, duplicate registrations). A record carried
   into the next period keeps its ``partner_record_id`` and may be corrected or updated.

Output under ``out_dir``::

    landing/<partner_id>/<YYYY-MM>/participants.csv   the extracts (canonical columns, strings)
    truth/participants_truth.csv                      record -> true person, corruption codes
    truth/persons_truth.csv                           true person attributes, hard-case groups
    truth/README.txt                                  what the truth files hold

Same arguments give byte-identical files: all randomness comes from one
``numpy.random.default_rng(seed)`` and Faker instances seeded from the same seed.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from faker import Faker
from unidecode import unidecode

from data_contracts import pii_columns

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CANONICAL_COLUMNS",
    "CORRUPTION_CODES",
    "DEFAULT_PERIODS",
    "PARTNERS",
    "PERSONS_TRUTH_COLUMNS",
    "TRUTH_COLUMNS",
    "PartnerProfile",
    "SynthSummary",
    "generate",
    "read_period",
]

#: The extract's columns: the participants contract's personal fields, in contract order.
CANONICAL_COLUMNS: tuple[str, ...] = pii_columns("participants")
TRUTH_COLUMNS: tuple[str, ...] = (
    "partner_id",
    "period",
    "partner_record_id",
    "true_person_id",
    "corruptions",
    "record_status",
)
PERSONS_TRUTH_COLUMNS: tuple[str, ...] = (
    "true_person_id",
    "first_name",
    "middle_name",
    "last_name",
    "suffix",
    "date_of_birth",
    "ssn",
    "sex",
    "origin",
    "household_id",
    "street_address",
    "city",
    "zip",
    "hard_case",
    "hard_case_group",
    "first_period",
)
DEFAULT_PERIODS: tuple[str, ...] = ("2026-09", "2026-10")
DATASET = "participants"
MIN_PERSONS = 100

DATE_FORMATS: dict[str, str] = {
    "YYYY-MM-DD": "%Y-%m-%d",
    "MM/DD/YYYY": "%m/%d/%Y",
    "YYYYMMDD": "%Y%m%d",
}

# Corruption codes written to truth/participants_truth.csv, with what each means.
CORRUPTION_CODES: dict[str, str] = {
    "typo_first_name": "one character inserted, deleted, substituted or transposed in first_name",
    "typo_last_name": "one character inserted, deleted, substituted or transposed in last_name",
    "nickname": "a nickname instead of the given name (Bill for William, Pepe for José)",
    "accent_dropped": "diacritics removed from a name (José -> Jose)",
    "accent_added": "diacritics added to a name written without them (Jose -> José)",
    "surname_hyphenated": "compound surname written with a hyphen (Rivera Santos -> Rivera-Santos)",
    "surname_spaced": "compound surname written with a space (García-López -> García López)",
    "surname_first_only": "only the first part of a compound surname (Rivera Santos -> Rivera)",
    "suffix_missing": "the person's suffix (Jr, Sr, III) left out",
    "suffix_in_last_name": "suffix typed into last_name (Smith Jr) and suffix left empty",
    "dob_day_month_swap": "day and month of the date of birth swapped (only where day <= 12)",
    "ssn_missing": "the person has an SSN but the record has none",
    "ssn_placeholder": "placeholder SSN (000-00-0000, 999-99-9999, 123-45-6789)",
    "ssn_typo": "one SSN digit wrong",
    "moved_address": "the record holds an earlier address of the person (moved, not updated)",
    "phone_missing": "the person has a phone but the record has none",
    "phone_outdated": "the record holds the person's previous phone number",
    "email_missing": "the person has an email address but the record has none",
    "case_whitespace": "upper/lower case changed or extra spaces in one or two text fields",
    "duplicate_registration": "second registration of the same person at the same partner",
}

# Rates: per record copy unless noted; "applicable" means the record could carry the error at all.
RATES: dict[str, float] = {
    "nickname": 0.06,  # of records whose given name has a known nickname
    "accent_dropped": 0.15,  # of records whose true name has diacritics
    "accent_added": 0.06,  # of records whose plain name has a usual accented form
    "surname_variant": 0.15,  # of records of persons with a compound surname
    "typo_first_name": 0.025,
    "typo_last_name": 0.025,
    "suffix_missing": 0.35,  # of records of persons with a suffix
    "suffix_in_last_name": 0.10,  # of records of persons with a suffix
    "dob_day_month_swap": 0.03,  # of records whose DOB day is <= 12 and != month
    "ssn_placeholder": 0.02,
    "ssn_typo": 0.02,
    "stale_address": 0.5,  # of records created while the household's move is recent
    "case_whitespace": 0.04,
    "duplicate_registration": 0.025,  # of enrollments
    # population and caseload dynamics
    "has_ssn": 0.97,
    "has_phone": 0.95,
    "has_email": 0.85,
    "prior_move": 0.08,  # households that moved shortly before the first period
    "move_per_period": 0.03,  # households that move before each later period
    "new_phone_per_period": 0.03,
    "new_person_later": 0.07,  # persons first served in a later period
    "enroll_later": 0.12,  # a person's further partners starting in a later period
    "exit_per_period": 0.13,  # enrollments ending before the next period
    "update_on_move": 0.4,  # carried records updated after a move / new phone
    "correction": 0.2,  # per field group with an error, per carried period
    "twins_pairs": 0.006,  # per person
    "jr_sr_pairs": 0.004,  # per person
}

PLACEHOLDER_SSNS: tuple[str, ...] = ("000000000", "999999999", "123456789")
# Widely published sample / advertising SSNs: never generated as a true person's SSN.
SAMPLE_SSNS: frozenset[str] = frozenset({"078051120", "219099999", "457555462", "123456789"})


@dataclass(frozen=True)
class PartnerProfile:
    """How one partner serves people and writes its extract.

    Attributes:
        partner_id: Fixed id used in the landing layout and record keys.
        display_name: Human name of the partner.
        age_min: Youngest age served (inclusive, age on the first day of the period).
        age_max: Oldest age served (inclusive).
        ssn_coverage: Share of records that carry the SSN of a person who has one.
        date_format: ``YYYY-MM-DD``, ``MM/DD/YYYY`` or ``YYYYMMDD``.
        share: Approximate share of the population the partner serves (assignment weight).
        id_style: How the partner forms its own record ids.
        name_case: ``title`` or ``upper``.
        ssn_style: ``dashed`` (123-45-6789) or ``digits``.
        phone_style: ``dashed``, ``paren``, ``digits`` or ``dotted``.
        sex_style: ``letter`` (F/M/X) or ``word`` (Female/Male/Non-binary).
        middle_style: ``full``, ``initial`` or ``none``.
        email_coverage: Share of records that carry the email of a person who has one.
        phone_coverage: Share of records that carry the phone of a person who has one.
    """

    partner_id: str
    display_name: str
    age_min: int
    age_max: int
    ssn_coverage: float
    date_format: str
    share: float
    id_style: str
    name_case: str = "title"
    ssn_style: str = "dashed"
    phone_style: str = "dashed"
    sex_style: str = "letter"
    middle_style: str = "full"
    email_coverage: float = 0.85
    phone_coverage: float = 0.95

    @property
    def strftime(self) -> str:
        """The ``strftime`` pattern of :attr:`date_format`."""
        return DATE_FORMATS[self.date_format]

    def serves(self, age: int) -> bool:
        """Whether a person of ``age`` is in the partner's age range."""
        return self.age_min <= age <= self.age_max


PARTNERS: dict[str, PartnerProfile] = {
    profile.partner_id: profile
    for profile in (
        PartnerProfile(
            "workforce_board", "Regional Workforce Board", 18, 64, 0.90, "YYYY-MM-DD", 0.35,
            id_style="wb", phone_style="paren", email_coverage=0.92, phone_coverage=0.97,
        ),
        PartnerProfile(
            "youth_dept", "City Youth Services Department", 14, 24, 0.40, "MM/DD/YYYY", 0.20,
            id_style="youth", ssn_style="digits", sex_style="word", middle_style="initial",
            email_coverage=0.75, phone_coverage=0.92,
        ),
        PartnerProfile(
            "northend_nonprofit", "North End Community Nonprofit", 16, 40, 0.60, "MM/DD/YYYY",
            0.15, id_style="numeric", phone_style="digits", email_coverage=0.80,
        ),
        PartnerProfile(
            "southend_nonprofit", "South End Community Nonprofit", 18, 55, 0.55, "YYYY-MM-DD",
            0.14, id_style="southend", middle_style="initial", email_coverage=0.82,
        ),
        PartnerProfile(
            "civic_assoc", "Neighborhood Civic Association", 16, 60, 0.30, "YYYYMMDD", 0.10,
            id_style="civic", name_case="upper", ssn_style="digits", phone_style="digits",
            sex_style="word", middle_style="none", email_coverage=0.60, phone_coverage=0.93,
        ),
        PartnerProfile(
            "community_college", "Community College", 17, 50, 0.85, "YYYY-MM-DD", 0.22,
            id_style="college", ssn_style="digits", phone_style="dotted", email_coverage=0.97,
        ),
        PartnerProfile(
            "public_schools", "Public Schools", 14, 19, 0.20, "MM/DD/YYYY", 0.16,
            id_style="sasid", name_case="upper", phone_style="paren", email_coverage=0.50,
            phone_coverage=0.90,
        ),
    )
}


@dataclass(frozen=True)
class SynthSummary:
    """Counts from one :func:`generate` run.

    Attributes:
        out_dir: Root the files were written under.
        seed: Seed used.
        periods: Periods written, oldest first.
        persons: True persons generated.
        persons_with_records: True persons with at least one record.
        records: Rows per partner per period (``records[partner_id][period]``).
        total_records: All rows in all extracts.
        duplicate_registrations: Enrollments registered twice at one partner.
        carryover_rate: Share of records whose partner_record_id reappears in the next period.
        twin_pairs: Twin pairs in the population.
        jr_sr_pairs: Jr/Sr father and son pairs in the population.
        common_name_persons: Persons in the planted common-name groups.
        landing_dir: ``out_dir / "landing"``.
        truth_path: The record-level truth file.
    """

    out_dir: Path
    seed: int
    periods: tuple[str, ...]
    persons: int
    persons_with_records: int
    records: dict[str, dict[str, int]]
    total_records: int
    duplicate_registrations: int
    carryover_rate: float
    twin_pairs: int
    jr_sr_pairs: int
    common_name_persons: int
    landing_dir: Path
    truth_path: Path


# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    city: str
    weight: float
    zips: tuple[str, ...]
    streets: tuple[tuple[str, str], ...]  # (name, type), type "" when none
    multifamily: float  # share of addresses with a unit


_PLACES: tuple[_Place, ...] = (
    _Place(
        "Hartford", 0.42, ("06103", "06105", "06106", "06112", "06114", "06120"),
        (
            ("Park", "Street"), ("Main", "Street"), ("Albany", "Avenue"), ("Franklin", "Avenue"),
            ("Wethersfield", "Avenue"), ("Broad", "Street"), ("Zion", "Street"),
            ("Farmington", "Avenue"), ("Asylum", "Avenue"), ("Blue Hills", "Avenue"),
            ("Homestead", "Avenue"), ("Garden", "Street"), ("Capen", "Street"),
            ("Sisson", "Avenue"), ("New Britain", "Avenue"), ("Washington", "Street"),
            ("Barbour", "Street"), ("Enfield", "Street"), ("Campfield", "Avenue"),
            ("Maple", "Avenue"), ("Babcock", "Street"), ("Putnam", "Street"),
            ("Bedford", "Street"), ("Magnolia", "Street"), ("Woodland", "Street"),
        ),
        0.55,
    ),
    _Place(
        "East Hartford", 0.12, ("06108", "06118"),
        (
            ("Burnside", "Avenue"), ("Main", "Street"), ("Silver", "Lane"), ("Forbes", "Street"),
            ("Tolland", "Street"), ("Prospect", "Street"), ("Park", "Avenue"),
            ("Hills", "Street"), ("Connecticut", "Boulevard"),
        ),
        0.40,
    ),
    _Place(
        "West Hartford", 0.09, ("06107", "06110", "06117", "06119"),
        (
            ("Farmington", "Avenue"), ("New Britain", "Avenue"), ("Park", "Road"),
            ("Boulevard", ""), ("Prospect", "Avenue"), ("Trout Brook", "Drive"),
            ("Fern", "Street"), ("South Main", "Street"), ("Quaker", "Lane"),
        ),
        0.20,
    ),
    _Place(
        "New Britain", 0.14, ("06051", "06052", "06053"),
        (
            ("Broad", "Street"), ("Arch", "Street"), ("Stanley", "Street"), ("Main", "Street"),
            ("Chestnut", "Street"), ("East Main", "Street"), ("Oak", "Street"),
            ("Lafayette", "Street"), ("Farmington", "Avenue"), ("Slater", "Road"),
        ),
        0.45,
    ),
    _Place(
        "Bloomfield", 0.06, ("06002",),
        (
            ("Blue Hills", "Avenue"), ("Park", "Avenue"), ("Tunxis", "Avenue"),
            ("Cottage Grove", "Road"), ("Wintonbury", "Avenue"), ("Mountain", "Avenue"),
        ),
        0.15,
    ),
    _Place(
        "Windsor", 0.06, ("06095",),
        (
            ("Poquonock", "Avenue"), ("Windsor", "Avenue"), ("Broad", "Street"),
            ("Palisado", "Avenue"), ("Bloomfield", "Avenue"), ("Day Hill", "Road"),
        ),
        0.15,
    ),
    _Place(
        "Wethersfield", 0.04, ("06109",),
        (("Silas Deane", "Highway"), ("Wolcott Hill", "Road"), ("Main", "Street"),
         ("Maple", "Street")),
        0.20,
    ),
    _Place(
        "Newington", 0.03, ("06111",),
        (("Main", "Street"), ("Willard", "Avenue"), ("Cedar", "Street"), ("Church", "Street")),
        0.20,
    ),
    _Place(
        "Manchester", 0.04, ("06040",),
        (("Main", "Street"), ("Center", "Street"), ("Spruce", "Street"), ("Hartford", "Road")),
        0.30,
    ),
)
_STREET_ABBREVIATIONS = {
    "Street": "St", "Avenue": "Ave", "Road": "Rd", "Lane": "Ln", "Drive": "Dr",
    "Highway": "Hwy", "Boulevard": "Blvd",
}
_EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com")
_EMAIL_DOMAIN_WEIGHTS = (0.55, 0.15, 0.10, 0.10, 0.07, 0.03)

# Puerto Rican / Latino names typical of Hartford.
_PR_FIRST = {
    "F": (
        "María", "Carmen", "Ana", "Luz", "Maritza", "Yesenia", "Xiomara", "Yaritza", "Nilda",
        "Migdalia", "Zoraida", "Glorimar", "Keishla", "Génesis", "Yamilet", "Nayeli", "Alondra",
        "Jazmín", "Marisol", "Brenda", "Jessica", "Ashley", "Kiara", "Elizabeth", "Lourdes",
        "Guadalupe", "Isabel", "Sofía", "Valeria", "Daniela",
    ),
    "M": (
        "José", "Luis", "Juan", "Carlos", "Ángel", "Jesús", "Héctor", "Jorge", "Miguel",
        "Víctor", "Edwin", "Wilfredo", "Efraín", "Jonathan", "Christian", "Jayden", "Yadiel",
        "Emmanuel", "Kevin", "Javier", "Ramón", "Pedro", "Francisco", "Alexis", "Joel",
        "Israel", "Anthony", "Roberto", "Eduardo", "Alejandro",
    ),
}
_PR_SURNAMES = (
    "Rivera", "Rodríguez", "Santiago", "Ortiz", "Torres", "Colón", "Pérez", "Cruz", "Díaz",
    "Vázquez", "Hernández", "Ramos", "Morales", "González", "Martínez", "López", "Figueroa",
    "Reyes", "Ayala", "Negrón", "Quiñones", "Matos", "Acevedo", "Maldonado", "Meléndez",
    "Santos", "Rosario", "Medina", "Velázquez", "Burgos", "Ocasio", "Pagán", "Serrano",
    "Nieves", "Marrero", "Cintrón", "Román", "Vega", "Sánchez", "García",
)
_PR_SURNAME_WEIGHTS = tuple(1.0 / (i + 1) ** 0.8 for i in range(len(_PR_SURNAMES)))  # Zipf-like

# English given names that have common nicknames (drawn often enough for nickname errors).
_EN_FORMAL_FIRST = {
    "F": (
        "Elizabeth", "Jennifer", "Katherine", "Margaret", "Patricia", "Jessica", "Samantha",
        "Rebecca", "Christina", "Victoria", "Deborah", "Susan", "Kimberly", "Abigail",
        "Alexandra", "Jacqueline",
    ),
    "M": (
        "William", "Robert", "Michael", "James", "Richard", "Joseph", "Thomas", "Christopher",
        "Anthony", "Daniel", "Matthew", "Nicholas", "Alexander", "Jonathan", "Benjamin",
        "Edward",
    ),
}
# ASCII lowercase given name -> nicknames used on intake forms.
_NICKNAMES: dict[str, tuple[str, ...]] = {
    "william": ("Bill", "Will", "Billy"),
    "robert": ("Bob", "Rob", "Bobby"),
    "michael": ("Mike", "Mikey"),
    "james": ("Jim", "Jimmy", "Jamie"),
    "richard": ("Rick", "Rich", "Dick"),
    "joseph": ("Joe", "Joey"),
    "thomas": ("Tom", "Tommy"),
    "christopher": ("Chris",),
    "anthony": ("Tony",),
    "daniel": ("Dan", "Danny"),
    "matthew": ("Matt",),
    "nicholas": ("Nick",),
    "alexander": ("Alex",),
    "jonathan": ("Jon", "Johnny"),
    "benjamin": ("Ben",),
    "edward": ("Ed", "Eddie", "Ted"),
    "elizabeth": ("Liz", "Beth", "Betty", "Lizzie"),
    "jennifer": ("Jen", "Jenny"),
    "katherine": ("Kate", "Katie", "Kathy"),
    "margaret": ("Maggie", "Peggy", "Meg"),
    "patricia": ("Pat", "Patty", "Trish"),
    "jessica": ("Jess", "Jessie"),
    "samantha": ("Sam", "Sammy"),
    "rebecca": ("Becky", "Becca"),
    "christina": ("Chris", "Tina"),
    "victoria": ("Vicky", "Tori"),
    "deborah": ("Debbie", "Deb"),
    "susan": ("Sue", "Susie"),
    "kimberly": ("Kim",),
    "abigail": ("Abby",),
    "alexandra": ("Alex", "Sandra"),
    "jacqueline": ("Jackie",),
    "jose": ("Pepe", "Chepe"),
    "francisco": ("Paco", "Pancho", "Frankie"),
    "guadalupe": ("Lupe",),
    "jesus": ("Chuy",),
    "roberto": ("Beto",),
    "alberto": ("Beto",),
    "eduardo": ("Lalo",),
    "alejandro": ("Alex",),
    "ignacio": ("Nacho",),
    "enrique": ("Kike",),
    "guillermo": ("Memo",),
    "manuel": ("Manny",),
    "maria": ("Mari",),
    "isabel": ("Isa", "Chabela"),
    "wilfredo": ("Willie",),
    "emmanuel": ("Manny",),
    "jonatan": ("Jon",),
}
# Plain spelling -> usual accented spelling (for "accent added" errors).
_ACCENTED: dict[str, str] = {
    "jose": "José", "maria": "María", "jesus": "Jesús", "angel": "Ángel", "hector": "Héctor",
    "victor": "Víctor", "ramon": "Ramón", "efrain": "Efraín", "genesis": "Génesis",
    "jazmin": "Jazmín", "sofia": "Sofía", "raul": "Raúl", "ivan": "Iván", "adrian": "Adrián",
    "julian": "Julián", "martin": "Martín", "andres": "Andrés", "lucia": "Lucía",
    "rodriguez": "Rodríguez", "garcia": "García", "lopez": "López", "perez": "Pérez",
    "colon": "Colón", "diaz": "Díaz", "vazquez": "Vázquez", "hernandez": "Hernández",
    "martinez": "Martínez", "gonzalez": "González", "sanchez": "Sánchez",
    "ramirez": "Ramírez", "gomez": "Gómez", "negron": "Negrón", "roman": "Román",
    "pagan": "Pagán", "velazquez": "Velázquez", "melendez": "Meléndez", "cintron": "Cintrón",
    "quinones": "Quiñones", "nunez": "Núñez", "jimenez": "Jiménez", "fernandez": "Fernández",
}
# QWERTY neighbours for substitution typos.
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_KEYBOARD_ROWS):
    for _c, _ch in enumerate(_row):
        _near = [_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)]
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_KEYBOARD_ROWS):
                _near += [
                    _KEYBOARD_ROWS[_other][j]
                    for j in (_c - 1, _c, _c + 1)
                    if 0 <= j < len(_KEYBOARD_ROWS[_other])
                ]
        _NEIGHBOURS[_ch] = "".join(_near)

_ORIGINS = ("en", "pr", "mx", "pl", "pt", "vi")
_ORIGIN_WEIGHTS = (0.52, 0.24, 0.12, 0.06, 0.03, 0.03)
_FAKER_LOCALES = {"en": "en_US", "mx": "es_MX", "pl": "pl_PL", "pt": "pt_BR", "vi": "vi_VN"}
_AGE_BANDS = ((14, 19, 0.22), (20, 24, 0.18), (25, 34, 0.22), (35, 49, 0.22), (50, 63, 0.16))
_PARTNER_COUNTS = ((1, 2, 3, 4), (0.42, 0.33, 0.17, 0.08))
_COMMON_NAMES = (("José", "Rodríguez", "M", "pr"), ("María", "Rivera", "F", "pr"),
                 ("Michael", "Smith", "M", "en"))
_GROUPS = ("name", "dob", "ssn", "sex", "address", "phone", "email", "record")
_GROUP_FIELDS = {
    "name": ("first_name", "middle_name", "last_name", "suffix"),
    "dob": ("date_of_birth",),
    "ssn": ("ssn",),
    "sex": ("sex",),
    "address": ("street_address", "city", "state", "zip"),
    "phone": ("phone",),
    "email": ("email",),
    "record": (),
}
_FIELD_GROUP = {f: g for g, fields in _GROUP_FIELDS.items() for f in fields}
_PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


# --------------------------------------------------------------------------------------------
# Internal model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Address:
    number: int
    street: str
    street_type: str
    unit: str
    city: str
    zip: str

    def line(self, abbreviate: bool) -> str:
        kind = _STREET_ABBREVIATIONS.get(self.street_type, self.street_type) if abbreviate else (
            self.street_type
        )
        parts = [str(self.number), self.street] + ([kind] if kind else [])
        if self.unit:
            parts.append(self.unit)
        return " ".join(parts)


@dataclass
class _Household:
    household_id: str
    # addresses[0]: before the first period; addresses[p + 1]: during period p.
    addresses: list[_Address]


@dataclass
class _Person:
    origin: str
    sex: str
    first_name: str
    middle_name: str
    last_name: str
    suffix: str
    dob: dt.date
    ssn: str
    household: _Household
    phones: list[str]  # per period, "" when none
    email: str
    hard_case: str = ""
    hard_case_group: str = ""
    linked: _Person | None = None  # twin / father-son partner for shared enrollments
    first_period: int = 0
    person_id: str = ""


@dataclass
class _Enrollment:
    person: _Person
    partner: PartnerProfile
    start: int
    end: int
    registrations: int


@dataclass
class _Record:
    partner_record_id: str
    enrollment: _Enrollment
    values: dict[str, str]
    codes: dict[str, set[str]]
    abbreviate: bool
    status: str = "new"


@dataclass
class _Context:
    """Run state; every draw comes from ``rng`` (uniforms fetched in blocks for speed)."""

    rng: np.random.Generator
    fakers: dict[str, Faker]
    period_starts: list[dt.date]
    used_ssns: set[str] = field(default_factory=set)
    _uniforms: list[float] = field(default_factory=list)
    _next: int = 0

    def uniform(self) -> float:
        """Uniform float in [0, 1)."""
        if self._next >= len(self._uniforms):
            self._uniforms, self._next = self.rng.random(4096).tolist(), 0
        self._next += 1
        return self._uniforms[self._next - 1]

    def chance(self, p: float) -> bool:
        return self.uniform() < p

    def index(self, n: int) -> int:
        """Uniform integer in [0, n)."""
        return min(int(self.uniform() * n), n - 1)

    def pick(self, items: Sequence):
        return items[self.index(len(items))]

    def between(self, low: int, high: int) -> int:
        """Uniform integer in [low, high]."""
        return low + self.index(high - low + 1)

    def weighted(self, items: Sequence, weights: Sequence[float]):
        """One of ``items`` with probability proportional to ``weights``."""
        cumulative = list(itertools.accumulate(weights))
        position = bisect.bisect_right(cumulative, self.uniform() * cumulative[-1])
        return items[min(position, len(items) - 1)]

    def sample(self, items: Sequence, weights: Sequence[float], k: int) -> list:
        """``k`` distinct items, drawn one by one proportionally to (positive) ``weights``."""
        pool, pool_weights, chosen = list(items), list(weights), []
        for _ in range(min(k, len(pool))):
            position = self.weighted(range(len(pool)), pool_weights)
            chosen.append(pool.pop(position))
            pool_weights.pop(position)
        return chosen

    def shuffled(self, n: int) -> list[int]:
        """A random order of ``range(n)``."""
        return [int(i) for i in self.rng.permutation(n)]


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def generate(
    out_dir: Path,
    *,
    seed: int = 20261,
    periods: Sequence[str] = DEFAULT_PERIODS,
    persons: int = 3000,
) -> SynthSummary:
    """Write seeded synthetic partner extracts and their ground truth under ``out_dir``.

    Args:
        out_dir: Root directory; ``landing/`` and ``truth/`` are created below it.
        seed: Seed for every random draw; the same seed gives byte-identical files.
        periods: Extract periods ``YYYY-MM``, strictly increasing.
        persons: Number of true persons in the population (at least 100).

    Returns:
        Counts of what was written.

    Raises:
        ValueError: On malformed or unordered periods or too few persons.
    """
    period_list = _check_periods(periods)
    if persons < MIN_PERSONS:
        raise ValueError(f"persons must be at least {MIN_PERSONS}, got {persons}")
    out_dir = Path(out_dir)
    ctx = _Context(
        rng=np.random.default_rng(seed),
        fakers=_make_fakers(seed),
        period_starts=[dt.date(int(p[:4]), int(p[5:]), 1) for p in period_list],
    )
    population, hard_counts = _generate_population(ctx, persons)
    enrollments = _enroll(ctx, population)
    extracts, truth_rows, carryover = _build_extracts(ctx, enrollments, period_list)

    landing_dir = out_dir / "landing"
    counts: dict[str, dict[str, int]] = {}
    for partner_id in PARTNERS:
        counts[partner_id] = {}
        for period in period_list:
            rows = extracts[(partner_id, period)]
            path = landing_dir / partner_id / period / f"{DATASET}.csv"
            _write_csv(path, CANONICAL_COLUMNS, rows)
            counts[partner_id][period] = len(rows)
    truth_dir = out_dir / "truth"
    truth_path = truth_dir / "participants_truth.csv"
    _write_csv(truth_path, TRUTH_COLUMNS, truth_rows)
    _write_csv(
        truth_dir / "persons_truth.csv",
        PERSONS_TRUTH_COLUMNS,
        [_person_truth_row(person, ctx) for person in population],
    )
    (truth_dir / "README.txt").write_text(_truth_readme(seed, period_list), encoding="utf-8")

    return SynthSummary(
        out_dir=out_dir,
        seed=seed,
        periods=tuple(period_list),
        persons=len(population),
        persons_with_records=len({row[3] for row in truth_rows}),
        records=counts,
        total_records=len(truth_rows),
        duplicate_registrations=sum(1 for e in enrollments if e.registrations > 1),
        carryover_rate=carryover,
        twin_pairs=hard_counts["twin"],
        jr_sr_pairs=hard_counts["jr_sr"],
        common_name_persons=hard_counts["common_name"],
        landing_dir=landing_dir,
        truth_path=truth_path,
    )


def read_period(landing_dir: Path, period: str) -> pd.DataFrame:
    """Every partner's participant drop of one period as one raw frame (all strings, blanks as
    None) with a ``partner_id`` column: what benchmarks and tests link directly, without the
    intake flow."""
    import pandas as pd

    frames = []
    for path in sorted(Path(landing_dir).glob(f"*/{period}/{DATASET}.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame["partner_id"] = path.parts[-3]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True).replace({"": None})


def _check_periods(periods: Sequence[str]) -> list[str]:
    period_list = list(periods)
    if not period_list:
        raise ValueError("at least one period is needed")
    for period in period_list:
        if not _PERIOD_RE.match(period):
            raise ValueError(f"period must be YYYY-MM, got {period!r}")
    if any(a >= b for a, b in itertools.pairwise(period_list)):
        raise ValueError(f"periods must be strictly increasing, got {period_list}")
    return period_list


def _make_fakers(seed: int) -> dict[str, Faker]:
    fakers = {}
    for offset, (origin, locale) in enumerate(_FAKER_LOCALES.items()):
        faker = Faker(locale)
        faker.seed_instance(seed * 31 + offset)
        fakers[origin] = faker
    return fakers


# --------------------------------------------------------------------------------------------
# Population
# --------------------------------------------------------------------------------------------


def _generate_population(ctx: _Context, n_persons: int) -> tuple[list[_Person], dict[str, int]]:
    """True persons: planted hard cases first, then ordinary persons, shuffled."""
    people: list[_Person] = []
    per_common = max(3, round(n_persons / 1000) + 2)
    for first, last, sex, origin in _COMMON_NAMES:
        group = f"common-{unidecode(first).lower()}-{unidecode(last).lower()}"
        dobs: set[dt.date] = set()
        for _ in range(per_common):
            person = _ordinary_person(ctx, origin=origin, sex=sex)
            person.first_name, person.last_name, person.suffix = first, last, ""
            while person.dob in dobs:
                person.dob = _draw_dob(ctx, _draw_age(ctx))
            dobs.add(person.dob)
            person.email = _make_email(ctx, person) if person.email else ""
            person.hard_case, person.hard_case_group = "common_name", group
            people.append(person)

    n_twins = max(2, round(n_persons * RATES["twins_pairs"]))
    for i in range(n_twins):
        people.extend(_twin_pair(ctx, f"twins-{i + 1:03d}"))
    n_jr_sr = max(2, round(n_persons * RATES["jr_sr_pairs"]))
    for i in range(n_jr_sr):
        people.extend(_jr_sr_pair(ctx, f"jr-sr-{i + 1:03d}"))
    while len(people) < n_persons:
        people.append(_ordinary_person(ctx))

    order = ctx.shuffled(len(people))
    people = [people[i] for i in order]
    household_ids: dict[int, str] = {}
    for index, person in enumerate(people):
        person.person_id = f"T{index + 1:06d}"
        key = id(person.household)
        if key not in household_ids:
            household_ids[key] = f"H{len(household_ids) + 1:06d}"
            person.household.household_id = household_ids[key]
        if person.hard_case or len(ctx.period_starts) == 1:
            person.first_period = 0
        elif ctx.chance(RATES["new_person_later"]):
            person.first_period = ctx.between(1, len(ctx.period_starts) - 1)
    hard_counts = {"twin": n_twins, "jr_sr": n_jr_sr, "common_name": per_common * 3}
    return people, hard_counts


def _ordinary_person(
    ctx: _Context,
    *,
    origin: str | None = None,
    sex: str | None = None,
    age: int | None = None,
    household: _Household | None = None,
) -> _Person:
    origin = origin or ctx.weighted(_ORIGINS, _ORIGIN_WEIGHTS)
    if sex is None:
        sex = "X" if ctx.chance(0.005) else ctx.pick(("F", "M"))
    name_sex = sex if sex != "X" else ctx.pick(("F", "M"))
    first, middle, last = _draw_name(ctx, origin, name_sex)
    suffix = ""
    if origin == "en" and name_sex == "M" and ctx.chance(0.015):
        suffix = ctx.pick(("Jr", "Jr", "III", "II"))
    person = _Person(
        origin=origin,
        sex=sex,
        first_name=first,
        middle_name=middle,
        last_name=last,
        suffix=suffix,
        dob=_draw_dob(ctx, age if age is not None else _draw_age(ctx)),
        ssn=_new_ssn(ctx) if ctx.chance(RATES["has_ssn"]) else "",
        household=household or _new_household(ctx),
        phones=_draw_phones(ctx),
        email="",
    )
    if ctx.chance(RATES["has_email"] if _age_at(person.dob, ctx.period_starts[0]) >= 16 else 0.5):
        person.email = _make_email(ctx, person)
    return person


def _twin_pair(ctx: _Context, group: str) -> list[_Person]:
    """Twins: same surname, DOB and address; different first names and SSNs."""
    age = ctx.between(14, 30)
    first = _ordinary_person(ctx, age=age)
    second = _ordinary_person(
        ctx, origin=first.origin, age=age, household=first.household,
        sex=ctx.pick(("F", "M")),
    )
    second.last_name, second.dob = first.last_name, first.dob
    first.suffix = second.suffix = ""
    for _ in range(50):
        if _given_key(second.first_name) != _given_key(first.first_name):
            break
        second.first_name = _draw_name(ctx, first.origin, second.sex)[0]
    else:  # pragma: no cover - fifty identical draws
        second.first_name = second.first_name + "a"
    if first.ssn and second.ssn and ctx.chance(0.5):
        # Twins often get consecutive SSNs: a nasty near-match for linkage.
        second.ssn = _neighbour_ssn(ctx, first.ssn)
    if ctx.chance(0.5):
        second.phones = list(first.phones)
    second.email = _make_email(ctx, second) if second.email else ""
    for person in (first, second):
        person.hard_case, person.hard_case_group = "twin", group
    first.linked, second.linked = second, first
    return [first, second]


def _jr_sr_pair(ctx: _Context, group: str) -> list[_Person]:
    """Father (Sr) and son (Jr) at one address with the same first and last name."""
    father_age = ctx.between(40, 63)
    father = _ordinary_person(ctx, origin=ctx.pick(("en", "en", "pr", "mx")), sex="M",
                              age=father_age)
    son = _ordinary_person(ctx, origin=father.origin, sex="M", household=father.household,
                           age=ctx.between(16, min(34, father_age - 20)))
    son.first_name, son.last_name = father.first_name, father.last_name
    if ctx.chance(0.5):
        son.middle_name = father.middle_name
    father.suffix, son.suffix = "Sr", "Jr"
    if ctx.chance(0.5):
        son.phones = list(father.phones)
    son.email = _make_email(ctx, son) if son.email else ""
    for person in (father, son):
        person.hard_case, person.hard_case_group = "jr_sr", group
    father.linked, son.linked = son, father
    return [father, son]


def _draw_name(ctx: _Context, origin: str, sex: str) -> tuple[str, str, str]:
    """First, middle and last name for a person of ``origin``."""
    if origin == "pr":
        first = ctx.pick(_PR_FIRST[sex])
        middle = ctx.pick(_PR_FIRST[sex]) if ctx.chance(0.45) else ""
        if middle == first:
            middle = ""
        last = ctx.weighted(_PR_SURNAMES, _PR_SURNAME_WEIGHTS)
        if ctx.chance(0.45):
            second = ctx.weighted(_PR_SURNAMES, _PR_SURNAME_WEIGHTS)
            if second != last:
                last = last + (" " if ctx.chance(0.7) else "-") + second
        return first, middle, last
    faker = ctx.fakers[origin]
    first_of = faker.first_name_female if sex == "F" else faker.first_name_male
    formal = origin == "en" and ctx.chance(0.35)
    first = ctx.pick(_EN_FORMAL_FIRST[sex]) if formal else first_of()
    middle_rate = {"en": 0.5, "mx": 0.35, "pl": 0.2, "pt": 0.3, "vi": 0.6}[origin]
    middle = first_of() if ctx.chance(middle_rate) else ""
    if middle == first:
        middle = ""
    last = faker.last_name()
    compound_rate = {"en": 0.02, "mx": 0.35, "pl": 0.03, "pt": 0.2, "vi": 0.0}[origin]
    if ctx.chance(compound_rate):
        second = faker.last_name()
        if second != last:
            sep = "-" if origin in ("en", "pl") or ctx.chance(0.3) else " "
            last = f"{last}{sep}{second}"
    return first, middle, last


def _draw_age(ctx: _Context) -> int:
    low, high, _ = ctx.weighted(_AGE_BANDS, [band[2] for band in _AGE_BANDS])
    return ctx.between(low, high)


def _draw_dob(ctx: _Context, age: int) -> dt.date:
    """A date of birth giving exactly ``age`` on the first day of the first period."""
    ref = ctx.period_starts[0]
    latest = ref.replace(year=ref.year - age)
    earliest = ref.replace(year=ref.year - age - 1) + dt.timedelta(days=1)
    return earliest + dt.timedelta(days=ctx.between(0, (latest - earliest).days))


def _age_at(dob: dt.date, when: dt.date) -> int:
    return when.year - dob.year - ((when.month, when.day) < (dob.month, dob.day))


def _new_ssn(ctx: _Context) -> str:
    """A valid-pattern SSN: area 001-665 or 667-899, group 01-99, serial 0001-9999."""
    while True:
        area = ctx.between(1, 899)
        if area == 666:
            continue
        ssn = f"{area:03d}{ctx.between(1, 99):02d}{ctx.between(1, 9999):04d}"
        if ssn not in SAMPLE_SSNS and ssn not in ctx.used_ssns:
            ctx.used_ssns.add(ssn)
            return ssn


def _neighbour_ssn(ctx: _Context, ssn: str) -> str:
    """An SSN with the same area and group and a nearby serial, falling back to a new one."""
    for delta in (1, 2, -1, 3):
        serial = int(ssn[5:]) + delta
        candidate = f"{ssn[:5]}{serial:04d}"
        if 1 <= serial <= 9999 and candidate not in ctx.used_ssns and (
            candidate not in SAMPLE_SSNS
        ):
            ctx.used_ssns.add(candidate)
            return candidate
    return _new_ssn(ctx)


def _new_household(ctx: _Context) -> _Household:
    current = _random_address(ctx)
    prior = _random_address(ctx, near=current) if ctx.chance(RATES["prior_move"]) else current
    addresses = [prior, current]
    for _ in range(1, len(ctx.period_starts)):
        if ctx.chance(RATES["move_per_period"]):
            addresses.append(_random_address(ctx, near=addresses[-1]))
        else:
            addresses.append(addresses[-1])
    return _Household(household_id="", addresses=addresses)


def _random_address(ctx: _Context, near: _Address | None = None) -> _Address:
    if near is not None and ctx.chance(0.6):
        place = next(p for p in _PLACES if p.city == near.city)
    else:
        place = ctx.weighted(_PLACES, [p.weight for p in _PLACES])
    street, street_type = ctx.pick(place.streets)
    unit = ""
    if ctx.chance(place.multifamily):
        floor = ctx.between(1, 3)
        unit = ctx.pick(
            (f"Apt {floor}", f"Apt {floor}{ctx.pick('ABCD')}", f"Unit {ctx.between(1, 24)}",
             f"Fl {floor}", f"# {floor}")
        )
    number = ctx.between(2, 120) if ctx.chance(0.6) else ctx.between(121, 1999)
    return _Address(number, street, street_type, unit, place.city, ctx.pick(place.zips))


def _random_phone(ctx: _Context) -> str:
    area = "860" if ctx.chance(0.8) else "959"
    while True:
        exchange = f"{ctx.between(2, 9)}{ctx.between(0, 9)}{ctx.between(0, 9)}"
        if exchange[1:] != "11" and exchange != "555":
            return f"{area}{exchange}{ctx.between(0, 9999):04d}"


def _draw_phones(ctx: _Context) -> list[str]:
    if not ctx.chance(RATES["has_phone"]):
        return [""] * len(ctx.period_starts)
    phones = [_random_phone(ctx)]
    for _ in range(1, len(ctx.period_starts)):
        phones.append(
            _random_phone(ctx) if ctx.chance(RATES["new_phone_per_period"]) else phones[-1]
        )
    return phones


def _make_email(ctx: _Context, person: _Person) -> str:
    first = re.sub(r"[^a-z]", "", unidecode(person.first_name).lower())
    last = re.sub(r"[^a-z]", "", unidecode(person.last_name).lower())
    number = ctx.between(1, 99)
    local = ctx.pick(
        (f"{first}.{last}", f"{first}{last}{number}", f"{first[:1]}{last}{number}",
         f"{first}{person.dob.year % 100:02d}", f"{first}_{last}")
    )
    domain = ctx.weighted(_EMAIL_DOMAINS, _EMAIL_DOMAIN_WEIGHTS)
    return f"{local}@{domain}"


def _given_key(name: str) -> str:
    """Given name with accents and nicknames folded, for keeping twins' names apart."""
    plain = unidecode(name).lower()
    for formal, nicks in _NICKNAMES.items():
        if plain == formal or plain in (n.lower() for n in nicks):
            return formal
    return plain


# --------------------------------------------------------------------------------------------
# Enrollments
# --------------------------------------------------------------------------------------------


def _enroll(ctx: _Context, people: list[_Person]) -> list[_Enrollment]:
    """Assign each person 1-4 partners whose age range fits, with start and end periods."""
    n_periods = len(ctx.period_starts)
    enrollments: list[_Enrollment] = []
    by_person: dict[str, list[_Enrollment]] = {}
    partners = list(PARTNERS.values())
    for person in people:
        mine: list[_Enrollment] = []
        linked = by_person.get(person.linked.person_id, []) if person.linked else []
        if linked and person.hard_case == "twin" and ctx.chance(0.75):
            # Twins are usually enrolled together and leave together.
            mine = [_Enrollment(person, e.partner, e.start, e.end, 1) for e in linked]
        else:
            start0 = person.first_period
            eligible = [p for p in partners if p.serves(_age_at(person.dob,
                                                                ctx.period_starts[start0]))]
            if not eligible:
                start0 = person.first_period = 0
                eligible = [p for p in partners
                            if p.serves(_age_at(person.dob, ctx.period_starts[0]))]
            wanted = ctx.weighted(*_PARTNER_COUNTS)
            chosen = ctx.sample(eligible, [p.share for p in eligible], wanted)
            if linked and person.hard_case == "jr_sr" and ctx.chance(0.6):
                shared = [e.partner for e in linked if e.partner.serves(
                    _age_at(person.dob, ctx.period_starts[e.start]))]
                if shared and shared[0] not in chosen:
                    chosen[-1] = shared[0]
            for index, partner in enumerate(chosen):
                start = start0
                if index > 0 and start0 < n_periods - 1 and ctx.chance(RATES["enroll_later"]):
                    start = ctx.between(start0 + 1, n_periods - 1)
                    if not partner.serves(_age_at(person.dob, ctx.period_starts[start])):
                        start = start0
                if not partner.serves(_age_at(person.dob, ctx.period_starts[start])):
                    continue
                end = start
                while (
                    end + 1 < n_periods
                    and not ctx.chance(RATES["exit_per_period"])
                    and partner.serves(_age_at(person.dob, ctx.period_starts[end + 1]))
                ):
                    end += 1
                mine.append(_Enrollment(person, partner, start, end, 1))
        for enrollment in mine:
            if ctx.chance(RATES["duplicate_registration"]):
                enrollment.registrations = 2
        by_person[person.person_id] = mine
        enrollments.extend(mine)
    return enrollments


# --------------------------------------------------------------------------------------------
# Extracts
# --------------------------------------------------------------------------------------------


class _RecordIds:
    """Each partner's own record-id style."""

    def __init__(self, ctx: _Context, partner: PartnerProfile) -> None:
        self.ctx = ctx
        self.style = partner.id_style
        self.counter = {"wb": 100, "youth": 0, "numeric": 100000, "southend": 0, "civic": 0}.get(
            self.style, 0
        ) + ctx.between(0, 500)
        self.year_counters: dict[str, int] = {}
        self.used: set[str] = set()

    def next(self, period: str) -> str:
        if self.style == "youth":
            year = period[:4]
            self.year_counters[year] = self.year_counters.get(year, 0) + 1
            return f"Y{year}-{self.year_counters[year]:04d}"
        if self.style in ("wb", "numeric", "southend"):
            self.counter += 1
            return {"wb": f"WB-{self.counter:06d}", "numeric": str(self.counter),
                    "southend": f"SE{self.counter:05d}"}[self.style]
        while True:
            if self.style == "civic":
                alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
                candidate = "CA" + "".join(self.ctx.pick(alphabet) for _ in range(6))
            elif self.style == "college":
                candidate = f"@00{self.ctx.between(100000, 999999)}"
            else:  # sasid: ten-digit state student id
                candidate = str(self.ctx.between(1_000_000_000, 9_999_999_999))
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate


def _build_extracts(
    ctx: _Context, enrollments: list[_Enrollment], periods: list[str]
) -> tuple[dict[tuple[str, str], list[list[str]]], list[list[str]], float]:
    """Record copies per partner and period, the truth rows and the carry-over rate."""
    ids = {pid: _RecordIds(ctx, partner) for pid, partner in PARTNERS.items()}
    live: list[_Record] = []
    extracts: dict[tuple[str, str], list[list[str]]] = {
        (pid, period): [] for pid in PARTNERS for period in periods
    }
    truth: list[list[str]] = []
    carried_total = previous_total = 0
    for p_index, period in enumerate(periods):
        carried = [r for r in live if r.enrollment.end >= p_index]
        for record in carried:
            _carry_record(ctx, record, p_index)
        if p_index > 0:
            carried_total += len(carried)
            previous_total += len(live)
        starting = [
            (enrollment, registration)
            for enrollment in enrollments
            if enrollment.start == p_index
            for registration in range(enrollment.registrations)
        ]
        new_records = []
        for i in ctx.shuffled(len(starting)):
            enrollment, registration = starting[i]
            record_id = ids[enrollment.partner.partner_id].next(period)
            new_records.append(
                _new_record(ctx, enrollment, record_id, p_index, duplicate=registration > 0)
            )
        live = carried + new_records
        for record in live:
            partner_id = record.enrollment.partner.partner_id
            extracts[(partner_id, period)].append(
                [record.partner_record_id] + [record.values[c] for c in CANONICAL_COLUMNS[1:]]
            )
            codes = sorted(set().union(*record.codes.values()))
            truth.append([partner_id, period, record.partner_record_id,
                          record.enrollment.person.person_id, ";".join(codes), record.status])
    for rows in extracts.values():
        rows.sort(key=lambda row: row[0])
    partner_order = {pid: i for i, pid in enumerate(PARTNERS)}
    truth.sort(key=lambda row: (partner_order[row[0]], row[1], row[2]))
    carryover = round(carried_total / previous_total, 4) if previous_total else 0.0
    return extracts, truth, carryover


def _new_record(
    ctx: _Context, enrollment: _Enrollment, record_id: str, p_index: int, *, duplicate: bool
) -> _Record:
    """A fresh intake record with errors drawn at the documented rates."""
    person, partner = enrollment.person, enrollment.partner
    record = _Record(
        partner_record_id=record_id,
        enrollment=enrollment,
        values={},
        codes={group: set() for group in _GROUPS},
        abbreviate=ctx.chance(0.7),
    )
    for group in _GROUPS:
        record.values.update(_clean_group(ctx, record, group, p_index))

    # Names.
    first, middle, last, suffix = (
        person.first_name, person.middle_name, person.last_name, person.suffix
    )
    name_codes = record.codes["name"]
    nicknames = _NICKNAMES.get(unidecode(first).lower())
    if nicknames and ctx.chance(RATES["nickname"]):
        first = ctx.pick(nicknames)
        name_codes.add("nickname")
    with_accents = [n for n, v in (("first", first), ("last", last)) if unidecode(v) != v]
    if with_accents and ctx.chance(RATES["accent_dropped"]):
        if "first" in with_accents and (len(with_accents) == 1 or ctx.chance(0.7)):
            first = unidecode(first)
        if "last" in with_accents and (len(with_accents) == 1 or ctx.chance(0.7)):
            last = unidecode(last)
        name_codes.add("accent_dropped")
    accentable = [n for n, v in (("first", first), ("last", last)) if _add_accents(v) != v]
    if accentable and ctx.chance(RATES["accent_added"]):
        if ctx.pick(accentable) == "first":
            first = _add_accents(first)
        else:
            last = _add_accents(last)
        name_codes.add("accent_added")
    parts = re.split(r"[ -]", last)
    if len(parts) == 2 and ctx.chance(RATES["surname_variant"]):
        choices = ["surname_first_only", "surname_spaced" if "-" in last else "surname_hyphenated"]
        code = ctx.pick(choices)
        last = {"surname_first_only": parts[0], "surname_spaced": " ".join(parts),
                "surname_hyphenated": "-".join(parts)}[code]
        name_codes.add(code)
    if ctx.chance(RATES["typo_first_name"]):
        first = _typo(ctx, first)
        name_codes.add("typo_first_name")
    if ctx.chance(RATES["typo_last_name"]):
        last = _typo(ctx, last)
        name_codes.add("typo_last_name")
    if suffix:
        draw = ctx.uniform()
        if draw < RATES["suffix_missing"]:
            suffix = ""
            name_codes.add("suffix_missing")
        elif draw < RATES["suffix_missing"] + RATES["suffix_in_last_name"]:
            last, suffix = f"{last} {suffix}", ""
            name_codes.add("suffix_in_last_name")
    record.values.update(_format_names(ctx, partner, first, middle, last, suffix))

    # Date of birth.
    dob = person.dob
    if dob.day <= 12 and dob.day != dob.month and ctx.chance(RATES["dob_day_month_swap"]):
        record.values["date_of_birth"] = dob.replace(month=dob.day, day=dob.month).strftime(
            partner.strftime
        )
        record.codes["dob"].add("dob_day_month_swap")

    # SSN.
    if person.ssn:
        if not ctx.chance(partner.ssn_coverage):
            record.values["ssn"] = ""
            record.codes["ssn"].add("ssn_missing")
        elif ctx.chance(RATES["ssn_placeholder"]):
            record.values["ssn"] = _format_ssn(partner, ctx.pick(PLACEHOLDER_SSNS))
            record.codes["ssn"].add("ssn_placeholder")
        elif ctx.chance(RATES["ssn_typo"]):
            position = ctx.between(0, 8)
            digit = str((int(person.ssn[position]) + ctx.between(1, 9)) % 10)
            typo = person.ssn[:position] + digit + person.ssn[position + 1:]
            record.values["ssn"] = _format_ssn(partner, typo)
            record.codes["ssn"].add("ssn_typo")

    # Address: a household that moved shortly before may still be on file at the old one.
    addresses = person.household.addresses
    if addresses[p_index] != addresses[p_index + 1] and ctx.chance(RATES["stale_address"]):
        record.values.update(_address_fields(addresses[p_index], record.abbreviate))
        record.codes["address"].add("moved_address")

    # Contacts.
    if person.phones[p_index] and not ctx.chance(partner.phone_coverage):
        record.values["phone"] = ""
        record.codes["phone"].add("phone_missing")
    if person.email and not ctx.chance(partner.email_coverage):
        record.values["email"] = ""
        record.codes["email"].add("email_missing")

    if ctx.chance(RATES["case_whitespace"]):
        _case_whitespace(ctx, record)
    if duplicate:
        record.codes["record"].add("duplicate_registration")
    return record


def _carry_record(ctx: _Context, record: _Record, p_index: int) -> None:
    """Carry a record into period ``p_index``: maybe corrected, maybe updated, same id."""
    person = record.enrollment.person
    before = dict(record.values)
    for group in _GROUPS:
        if group == "record" or not record.codes[group]:
            continue
        if ctx.chance(RATES["correction"]):
            record.values.update(_clean_group(ctx, record, group, p_index))
            record.codes[group].clear()
    addresses = person.household.addresses
    if addresses[p_index + 1] != addresses[p_index]:
        if ctx.chance(RATES["update_on_move"]):
            record.values.update(_clean_group(ctx, record, "address", p_index))
            record.codes["address"].clear()
        else:
            record.codes["address"].add("moved_address")
    phones = person.phones
    if phones[p_index] != phones[p_index - 1] and record.values["phone"]:
        if ctx.chance(RATES["update_on_move"]):
            record.values.update(_clean_group(ctx, record, "phone", p_index))
            record.codes["phone"].clear()
        else:
            record.codes["phone"].add("phone_outdated")
    record.status = "carried_updated" if record.values != before else "carried"


def _clean_group(ctx: _Context, record: _Record, group: str, p_index: int) -> dict[str, str]:
    """Error-free values of one field group, in the partner's own formats."""
    person, partner = record.enrollment.person, record.enrollment.partner
    if group == "name":
        return _format_names(ctx, partner, person.first_name, person.middle_name,
                             person.last_name, person.suffix)
    if group == "dob":
        return {"date_of_birth": person.dob.strftime(partner.strftime)}
    if group == "ssn":
        return {"ssn": _format_ssn(partner, person.ssn) if person.ssn else ""}
    if group == "sex":
        words = {"F": "Female", "M": "Male", "X": "Non-binary"}
        return {"sex": words[person.sex] if partner.sex_style == "word" else person.sex}
    if group == "address":
        return _address_fields(person.household.addresses[p_index + 1], record.abbreviate)
    if group == "phone":
        return {"phone": _format_phone(partner, person.phones[p_index])}
    if group == "email":
        return {"email": person.email}
    return {}


def _format_names(
    ctx: _Context, partner: PartnerProfile, first: str, middle: str, last: str, suffix: str
) -> dict[str, str]:
    if partner.middle_style == "initial":
        middle = middle[:1]
    elif partner.middle_style == "none":
        middle = ""
    if suffix in ("Jr", "Sr") and ctx.chance(0.3):
        suffix += "."
    values = {"first_name": first, "middle_name": middle, "last_name": last, "suffix": suffix}
    if partner.name_case == "upper":
        values = {k: v.upper() for k, v in values.items()}
    return values


def _format_ssn(partner: PartnerProfile, ssn: str) -> str:
    return f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}" if partner.ssn_style == "dashed" else ssn


def _format_phone(partner: PartnerProfile, phone: str) -> str:
    if not phone:
        return ""
    a, b, c = phone[:3], phone[3:6], phone[6:]
    return {
        "dashed": f"{a}-{b}-{c}",
        "paren": f"({a}) {b}-{c}",
        "digits": phone,
        "dotted": f"{a}.{b}.{c}",
    }[partner.phone_style]


def _address_fields(address: _Address, abbreviate: bool) -> dict[str, str]:
    return {"street_address": address.line(abbreviate), "city": address.city, "state": "CT",
            "zip": address.zip}


def _add_accents(name: str) -> str:
    """Replace plain words that have a usual accented spelling (Jose -> José)."""
    def accent(match: re.Match[str]) -> str:
        word = match.group(0)
        return _ACCENTED.get(word.lower(), word) if word.isascii() else word

    return re.sub(r"[^\s-]+", accent, name)


def _typo(ctx: _Context, name: str) -> str:
    """One insert, delete, substitute or transpose on the letters of ``name``."""
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    for _ in range(10):
        op = ctx.pick(("insert", "delete", "substitute", "transpose"))
        pos = ctx.pick(letters)
        ch = name[pos]
        near = _NEIGHBOURS.get(unidecode(ch).lower(), "aeiou") or "aeiou"
        new_ch = ctx.pick(near)
        new_ch = new_ch.upper() if ch.isupper() else new_ch
        if op == "insert":
            candidate = name[: pos + 1] + new_ch.lower() + name[pos + 1:]
        elif op == "delete" and len(letters) > 3:
            candidate = name[:pos] + name[pos + 1:]
        elif op == "substitute":
            candidate = name[:pos] + new_ch + name[pos + 1:]
        elif op == "transpose" and pos + 1 < len(name) and name[pos + 1].isalpha():
            candidate = name[:pos] + name[pos + 1] + name[pos] + name[pos + 2:]
        else:
            continue
        if candidate != name and candidate.strip():
            return candidate
    return name + "e"


def _case_whitespace(ctx: _Context, record: _Record) -> None:
    """Change case or add spaces in one or two text fields."""
    candidates = [f for f in ("first_name", "last_name", "street_address", "city", "email")
                  if record.values[f]]
    if not candidates:
        return
    count = 2 if len(candidates) > 1 and ctx.chance(0.3) else 1
    for name in ctx.sample(candidates, [1.0] * len(candidates), count):
        value = record.values[name]
        op = ctx.pick(("upper", "lower", "pad", "double_space"))
        if op == "upper" and value != value.upper():
            value = value.upper()
        elif op == "lower" and value != value.lower():
            value = value.lower()
        elif op == "double_space" and " " in value:
            value = value.replace(" ", "  ", 1)
        else:
            value = ctx.pick((" ", "  ", "")) + value + ctx.pick((" ", "  "))
        record.values[name] = value
        record.codes[_FIELD_GROUP[name]].add("case_whitespace")


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _write_csv(path: Path, header: Sequence[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _person_truth_row(person: _Person, ctx: _Context) -> list[str]:
    address = person.household.addresses[1]
    return [
        person.person_id, person.first_name, person.middle_name, person.last_name,
        person.suffix, person.dob.isoformat(),
        f"{person.ssn[:3]}-{person.ssn[3:5]}-{person.ssn[5:]}" if person.ssn else "",
        person.sex, person.origin, person.household.household_id, address.line(True),
        address.city, address.zip, person.hard_case, person.hard_case_group,
        f"{ctx.period_starts[person.first_period]:%Y-%m}",
    ]


def _truth_readme(seed: int, periods: list[str]) -> str:
    codes = "\n".join(f"  {code:<24} {meaning}" for code, meaning in CORRUPTION_CODES.items())
    partners = "\n".join(
        f"  {p.partner_id:<20} {p.display_name}; ages {p.age_min}-{p.age_max}; "
        f"SSN ~{p.ssn_coverage:.0%}; dates {p.date_format}"
        for p in PARTNERS.values()
    )
    return f"""Pathlink synthetic data: ground truth
=====================================

Generated by pipelines/synthetic/participants.py with seed {seed} for periods {", ".join(periods)}.
Everything here is synthetic. Names, dates of birth, SSNs, addresses, phones and email
addresses are random and belong to no real person.

The truth lives apart from the partner extracts (landing/) on purpose: never copy these files
into landing/ or feed them to the pipeline. Use them only to evaluate linkage.

participants_truth.csv: one row per record per period
  partner_id         partner that sent the record (landing/<partner_id>/<period>/)
  period             extract period, YYYY-MM
  partner_record_id  the partner's own record id (record key: "<partner_id>:<partner_record_id>")
  true_person_id     the real person behind the record; two records are a true match when
                     their true_person_id is equal
  corruptions        semicolon-separated error codes in this copy of the record (empty: clean)
  record_status      new (first appearance), carried (same id, unchanged from last period) or
                     carried_updated (same id, some fields corrected or updated)

persons_truth.csv: one row per true person
  true name, date of birth (YYYY-MM-DD), SSN (empty: none), sex, name origin, household_id,
  address in the first period, hard_case and hard_case_group, first_period.
  hard_case marks planted non-matches linkage must keep apart:
    twin         same surname, DOB and address, different first names and SSNs
                 (half the pairs have consecutive SSN serials)
    jr_sr        father (Sr) and son (Jr), same first and last name and address, different DOB;
                 the suffix is often missing in records
    common_name  several distinct persons named e.g. José Rodríguez, María Rivera,
                 Michael Smith, with different dates of birth

Corruption codes
{codes}

Partners
{partners}

Age ranges apply to the age on the first day of each period. From one period to the next,
about 87% of a partner's records reappear with the same partner_record_id (some corrected, some
with a new address or phone); the rest are exits or age-outs, and new records appear for new
persons and for persons new to that partner.
"""
