"""Name cleaning helpers for `linkage.normalize` (given names, surnames, suffixes, nicknames).

Everything here is a pure function of its text argument; results are memoised with
`functools.lru_cache` because participant files repeat the same names many times.
"""

from __future__ import annotations

import re
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple

from nicknames import NickNamer
from unidecode import unidecode

__all__ = [
    "SURNAME_PARTICLES",
    "SurnameParts",
    "canonical_given_name",
    "clean_name",
    "parse_suffix",
    "split_surname",
]

#: Words kept inside `family_name` but never used alone as `family_name_first`/`_last`.
SURNAME_PARTICLES = frozenset(
    {
        "al", "bin", "da", "das", "de", "dei", "del", "della", "der", "des", "di", "do", "dos",
        "du", "el", "ibn", "la", "las", "le", "los", "san", "st", "ste", "ten", "ter", "van",
        "von", "y",
    }
)  # fmt: skip

_SUFFIX_CODES = MappingProxyType(
    {
        "jr": "JR",
        "junior": "JR",
        "sr": "SR",
        "senior": "SR",
        "ii": "II",
        "2nd": "II",
        "iii": "III",
        "3rd": "III",
        "iv": "IV",
        "4th": "IV",
    }
)

# Curated readings for common short forms, applied on top of the package data. The data set
# is noisy (it records both "robert has_nickname bill" and "bill has_nickname william", and
# lists many short forms such as bob, jim, kate as canonical names with nicknames of their own);
# for these the usual English reading wins. An entry mapping to itself pins a name that the
# data would otherwise fold into an unrelated longer name (maria -> marietta).
_PREFERRED_CANONICAL = MappingProxyType(
    {
        "al": "albert",
        "alex": "alexander",
        "ana": "ana",
        "andy": "andrew",
        "beth": "elizabeth",
        "bill": "william",
        "billy": "william",
        "bob": "robert",
        "bobby": "robert",
        "cathy": "catherine",
        "charlie": "charles",
        "chris": "christopher",
        "dan": "daniel",
        "danny": "daniel",
        "deb": "deborah",
        "debbie": "deborah",
        "dick": "richard",
        "don": "donald",
        "donnie": "donald",
        "drew": "andrew",
        "ed": "edward",
        "eddie": "edward",
        "fred": "frederick",
        "hank": "henry",
        "harry": "harold",
        "jack": "john",
        "jeff": "jeffrey",
        "jenny": "jennifer",
        "jim": "james",
        "jimmy": "james",
        "joe": "joseph",
        "joey": "joseph",
        "johnny": "john",
        "jon": "jonathan",
        "kate": "katherine",
        "katie": "katherine",
        "larry": "lawrence",
        "lizzie": "elizabeth",
        "maggie": "margaret",
        "maria": "maria",
        "matt": "matthew",
        "meg": "margaret",
        "mike": "michael",
        "molly": "mary",
        "nick": "nicholas",
        "patty": "patricia",
        "peggy": "margaret",
        "polly": "mary",
        "ray": "raymond",
        "rick": "richard",
        "ricky": "richard",
        "rob": "robert",
        "robbie": "robert",
        "ron": "ronald",
        "ronnie": "ronald",
        "rosa": "rosa",
        "sally": "sarah",
        "sam": "samuel",
        "steve": "stephen",
        "sue": "susan",
        "susie": "susan",
        "ted": "edward",
        "tom": "thomas",
        "tony": "anthony",
        "will": "william",
        "willie": "william",
        "willy": "william",
    }
)

_NON_LETTERS = re.compile(r"[^a-z]+")
_PART_SPLIT = re.compile(r"[\s\-]+")
#: The normalized suffix codes (the ``suffix`` column holds one of these or None).
SUFFIXES = frozenset(_SUFFIX_CODES.values())

_SUFFIX_TOKEN_SPLIT = re.compile(r"[\s,]+")


class SurnameParts(NamedTuple):
    """A cleaned surname: whole, first and last meaningful part, and a trailing suffix."""

    family_name: str | None
    family_name_first: str | None
    family_name_last: str | None
    suffix: str | None


def _ascii_lower(text: str) -> str:
    return unidecode(text).lower().strip()


@lru_cache(maxsize=65536)
def _name_parts(text: str) -> tuple[str, ...]:
    """Split a name on spaces/hyphens into ASCII lowercase letter-only parts (empty dropped)."""
    parts = (_NON_LETTERS.sub("", part) for part in _PART_SPLIT.split(_ascii_lower(text)))
    return tuple(part for part in parts if part)


@lru_cache(maxsize=65536)
def clean_name(text: str) -> str | None:
    """Return the name as ASCII lowercase letters only (`"Zoë O'Brien-Lee"` -> `"zoeobrienlee"`).

    Args:
        text: Raw name text.

    Returns:
        The cleaned name, or None when no letters remain.
    """
    return "".join(_name_parts(text)) or None


@lru_cache(maxsize=1024)
def parse_suffix(text: str) -> str | None:
    """Return the generational suffix code (`JR`, `SR`, `II`, `III`, `IV`) for `text`, or None.

    Accepts e.g. `"Jr."`, `"jr"`, `"Junior"`, `"III"`, `"2nd"`, `"3rd"`.
    """
    token = re.sub(r"[^a-z0-9]+", "", _ascii_lower(text))
    return _SUFFIX_CODES.get(token)


@lru_cache(maxsize=65536)
def split_surname(text: str) -> SurnameParts:
    """Clean a surname, taking a trailing suffix off it.

    `"Garcia-Lopez"` and `"Garcia Lopez"` give `("garcialopez", "garcia", "lopez", None)`;
    `"de la Cruz"` gives `("delacruz", "cruz", "cruz", None)`; `"Smith, Jr."` gives
    `("smith", "smith", "smith", "JR")`. Particles (de, la, van, st, ...) stay inside
    `family_name` but are not used alone as the first or last part unless nothing else is left.

    Args:
        text: Raw surname text.

    Returns:
        The surname parts; all None when no letters remain.
    """
    tokens = [token for token in _SUFFIX_TOKEN_SPLIT.split(text.strip()) if token]
    suffix = None
    if len(tokens) > 1:
        suffix = parse_suffix(tokens[-1])
        if suffix is not None:
            tokens = tokens[:-1]
    parts = _name_parts(" ".join(tokens))
    if not parts:
        return SurnameParts(None, None, None, suffix)
    meaningful = [part for part in parts if part not in SURNAME_PARTICLES] or list(parts)
    return SurnameParts("".join(parts), meaningful[0], meaningful[-1], suffix)


@lru_cache(maxsize=1)
def _canonical_table() -> MappingProxyType[str, str]:
    """Build nickname -> canonical once from the `nicknames` package data.

    Rule for a cleaned name `n`:
    1. a curated preference (`_PREFERRED_CANONICAL`) wins;
    2. a name the package lists with nicknames of its own is canonical and maps to itself
       ("william", "robert", "elizabeth");
    3. otherwise, among the package's canonicals for `n` (only those longer than `n` when there
       are any: formal names are longer), take the one with the most nicknames, then the
       longest, then the alphabetically first ("liz" -> "elizabeth");
    4. unknown names map to themselves.
    """
    namer = NickNamer()
    nicknames_of = namer.nickname_lookup
    canonicals_of = namer.canonical_lookup

    def degree(name: str) -> int:
        return len(nicknames_of.get(name, ()))

    table: dict[str, str] = {}
    for name, canonicals in canonicals_of.items():
        if name in nicknames_of:
            continue
        candidates = [c for c in canonicals if len(c) > len(name)] or list(canonicals)
        table[name] = min(candidates, key=lambda c: (-degree(c), -len(c), c))
    for name, canonical in _PREFERRED_CANONICAL.items():
        if canonical == name:
            table.pop(name, None)
        else:
            table[name] = canonical
    return MappingProxyType(table)


@lru_cache(maxsize=65536)
def canonical_given_name(name: str) -> str:
    """Return the canonical form of a cleaned given name (`"bill"` -> `"william"`).

    Args:
        name: A given name already passed through `clean_name`.

    Returns:
        The canonical name, or `name` itself when it is canonical or unknown.
    """
    return _canonical_table().get(name, name)
