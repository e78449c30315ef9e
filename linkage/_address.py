"""Address cleaning helpers for `linkage.normalize` (street line, city, state, ZIP).

Street lines go through scourgify (USPS Publication 28 forms); scourgify errors carry the
address in their message, so they are caught here and never re-raised or logged.
"""

from __future__ import annotations

import re
from functools import lru_cache
from types import MappingProxyType

from scourgify import normalize_address_record
from scourgify.address_constants import STATE_ABBREVIATIONS
from unidecode import unidecode

__all__ = ["clean_city", "clean_state", "clean_zip5", "standardize_street"]

_STATE_CODES = frozenset(
    {
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL",
        "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE",
        "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD",
        "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "AS", "GU", "MP", "PR", "VI",
        "UM", "FM", "MH", "PW", "AA", "AE", "AP",
    }
)  # fmt: skip

# Used only when scourgify cannot parse a street line.
_FALLBACK_ABBREVIATIONS = MappingProxyType(
    {
        "APARTMENT": "APT",
        "AVENUE": "AVE",
        "BOULEVARD": "BLVD",
        "CIRCLE": "CIR",
        "COURT": "CT",
        "DRIVE": "DR",
        "HIGHWAY": "HWY",
        "LANE": "LN",
        "PARKWAY": "PKWY",
        "PLACE": "PL",
        "ROAD": "RD",
        "SQUARE": "SQ",
        "STREET": "ST",
        "SUITE": "STE",
        "TERRACE": "TER",
        "TURNPIKE": "TPKE",
    }
)

_NOT_ADDRESS_CHARS = re.compile(r"[^A-Z0-9# /-]+")
_WHITESPACE = re.compile(r"\s+")
_ZIP = re.compile(r"(\d{5})(?:-?\d{4})?")
_ZIP_LOST_ZERO = re.compile(r"\d{4}(?:-?\d{4})?")


def _upper_ascii(text: str) -> str:
    return _WHITESPACE.sub(" ", unidecode(text).upper()).strip()


def _fallback_street(street: str) -> str | None:
    """Uppercase, punctuation-light, whitespace-collapsed street line with common abbreviations."""
    text = _NOT_ADDRESS_CHARS.sub(" ", _upper_ascii(street))
    words = [_FALLBACK_ABBREVIATIONS.get(word, word) for word in text.split()]
    return " ".join(words) or None


def _scourgify_street(address: str | dict[str, str | None]) -> str | None:
    """Line 1 (+ line 2) from scourgify, or None when it cannot parse the address."""
    try:
        record = normalize_address_record(address, strict=False)
    except Exception:  # scourgify raises many types, and their messages hold the address
        return None
    lines = [record.get("address_line_1"), record.get("address_line_2")]
    standardized = " ".join(line.strip() for line in lines if line and line.strip())
    return _WHITESPACE.sub(" ", standardized) or None


@lru_cache(maxsize=131072)
def _standardize_street_line(street_ascii: str) -> str | None:
    return _scourgify_street(street_ascii)


@lru_cache(maxsize=131072)
def standardize_street(
    street: str, city: str | None, state: str | None, zip5: str | None
) -> str | None:
    """Return the USPS-standardized street line (line 1, then line 2 when present), uppercase.

    `"123 north main street apt 4"` -> `"123 N MAIN ST APT 4"`. The street line is parsed on
    its own first (cached per distinct street); only when that fails is it retried with city,
    state and ZIP as context, and then a simple uppercase form is used. Never raises.

    Args:
        street: Raw street address text.
        city: Cleaned city or None.
        state: Two-letter state code or None.
        zip5: Five-digit ZIP or None.

    Returns:
        The standardized street line, or None when it is blank.
    """
    street_ascii = _upper_ascii(street)
    if not street_ascii:
        return None
    standardized = _standardize_street_line(street_ascii)
    if standardized is None and (zip5 or (city and state)):
        standardized = _scourgify_street(
            {
                "address_line_1": street_ascii,
                "address_line_2": None,
                "city": city,
                "state": state,
                "postal_code": zip5,
            }
        )
    return standardized if standardized is not None else _fallback_street(street_ascii)


@lru_cache(maxsize=16384)
def clean_city(text: str) -> str | None:
    """Uppercase ASCII city, letters/digits/spaces only (`"Hartford "` -> `"HARTFORD"`)."""
    city = _WHITESPACE.sub(" ", re.sub(r"[^A-Z0-9 ]+", " ", _upper_ascii(text))).strip()
    return city or None


@lru_cache(maxsize=1024)
def clean_state(text: str) -> str | None:
    """Two-letter state code from a code or a name (`"Connecticut"` -> `"CT"`), else None."""
    state = _WHITESPACE.sub(" ", re.sub(r"[^A-Z ]+", " ", _upper_ascii(text))).strip()
    if state in _STATE_CODES:
        return state
    code = STATE_ABBREVIATIONS.get(state)
    return code if code in _STATE_CODES else None


@lru_cache(maxsize=16384)
def clean_zip5(text: str) -> str | None:
    """First five digits of a ZIP or ZIP+4 (`"06103-1234"` -> `"06103"`), else None.

    A 4-digit ZIP (or 4+4) is taken as one whose leading zero a spreadsheet dropped
    (`"6103"` -> `"06103"`), as is common for New England ZIPs.
    """
    zip_text = _WHITESPACE.sub("", text)
    match = _ZIP.fullmatch(zip_text)
    if match:
        zip5 = match.group(1)
    elif _ZIP_LOST_ZERO.fullmatch(zip_text):
        zip5 = "0" + zip_text[:4]
    else:
        return None
    return None if zip5 == "00000" else zip5
