"""Which contract field each header names, and which row of a file is the header.

A header is matched, case-, space- and punctuation-insensitively (`data_contracts.header_key`),
first against the partner's own map in `pathlink.toml` (`[partners.<id>.columns]`: it wins),
then against the contract's property names, then against each property's `aliases`. Headers
that name no field are left out and reported with the map lines that would place them.

The header row is the first row, among the first `HEADER_SCAN_ROWS` non-empty ones, that names
the most fields: title rows above it ("Participant export, June") are skipped.

Partner-written headers reach a message only through `safe_label`, and only when the row is
recognisably a header (it names at least two fields): a file without a header row must not
echo its first data row.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from data_contracts import Contract, header_key
from pipelines.ingest.errors import FileRejected, safe_label

#: How many non-empty rows from the top are searched for the header row.
HEADER_SCAN_ROWS = 20


@dataclass(frozen=True)
class HeaderMatch:
    """One column of the file: its header, the field it names, and how it was placed."""

    index: int
    header: str
    field: str | None
    how: str | None  # "map" | "name" | "alias" | None (not placed)

    @property
    def label(self) -> str:
        return safe_label(self.header.strip()) if self.header.strip() else \
            f"(column {self.index + 1}, no header)"


@dataclass
class HeaderMapping:
    """How a file's header was read: the matches, the header row and (XLSX) the sheet."""

    dataset: str | None
    matches: list[HeaderMatch]
    row: int = 1
    sheet: str | None = None
    required: tuple[str, ...] = ()
    suggestions_for: dict[str, str] = field(default_factory=dict)

    @property
    def fields(self) -> list[str]:
        return [m.field for m in self.matches if m.field]

    @property
    def unplaced(self) -> list[HeaderMatch]:
        return [m for m in self.matches if m.field is None and m.header.strip()]

    @property
    def missing(self) -> list[str]:
        have = set(self.fields)
        return [c for c in self.required if c not in have]

    @property
    def looks_like_header(self) -> bool:
        """At least two fields named: safe to echo the header's other cells."""
        return len(set(self.fields)) >= 2

    def suggestions(self, partner_id: str | None = None) -> list[str]:
        """`pathlink.toml` lines that would place the unplaced headers (best guesses first;
        a header with no close field gets a line to complete by hand)."""
        if not self.looks_like_header or not self.unplaced:
            return []
        table = f"[partners.{partner_id or '<partner_id>'}.columns]"
        lines = [table]
        for match in self.unplaced:
            guess = self.suggestions_for.get(match.header)
            target = guess if guess else "<contract field>"
            label = match.label.replace('"', "'")
            lines.append(f'"{label}" = "{target}"' + ("" if guess else "   # or leave it out"))
        return lines

    def describe(self) -> list[str]:
        """One line per column: header -> field (how), for `pathlink check`."""
        if not self.looks_like_header:
            placed = sum(1 for m in self.matches if m.field)
            return [f"{placed} of {len(self.matches)} columns placed; the header row was not "
                    "recognised (headers not shown)"]
        out = []
        for match in self.matches:
            if not match.header.strip() and match.field is None:
                continue
            target = match.field or "(left out: not a contract field)"
            how = {"map": "your map in pathlink.toml", "name": "field name",
                   "alias": "alias"}.get(match.how or "", "")
            out.append(f"{match.label} -> {target}" + (f"  [{how}]" if how else ""))
        return out


class HeaderIndex:
    """The spellings that name each field: the partner's map, names, aliases (in that order)."""

    def __init__(self, contract: Contract | None,
                 column_map: Mapping[str, str] | None = None) -> None:
        self.contract = contract
        self.by_key: dict[str, tuple[str, str]] = {}
        self.fields: set[str] = set(contract.columns) if contract else set()
        for theirs, ours in (column_map or {}).items():
            self.by_key.setdefault(header_key(str(theirs)), (str(ours), "map"))
        if contract is not None:
            for prop in contract.properties:
                self.by_key.setdefault(header_key(prop.name), (prop.name, "name"))
            for prop in contract.properties:
                for alias in prop.aliases:
                    self.by_key.setdefault(header_key(alias), (prop.name, "alias"))
        self._known = sorted(self.by_key)

    def match(self, header: str) -> tuple[str, str] | None:
        key = header_key(header)
        return self.by_key.get(key) if key else None

    def score(self, row: Iterable[str]) -> int:
        """How many distinct contract fields a row names (0 for a data or title row)."""
        found = {hit[0] for cell in row if (hit := self.match(str(cell))) is not None}
        return len(found & self.fields) if self.fields else len(found)

    def guess(self, header: str) -> str | None:
        """The field whose name or alias is closest to an unplaced header, if any is close."""
        key = header_key(header)
        if not key:
            return None
        close = difflib.get_close_matches(key, self._known, n=1, cutoff=0.75)
        if close:
            return self.by_key[close[0]][0]
        for known in self._known:  # "Participant DOB" -> dob, "Home Zip" -> zip
            if len(known) >= 3 and (key.endswith(known) or key.startswith(known)):
                return self.by_key[known][0]
        return None


def find_header_row(rows: list[tuple[int, list[str]]], index: HeaderIndex) -> int:
    """Position (in `rows`) of the header row: the first of the best-scoring non-empty rows
    among the first `HEADER_SCAN_ROWS`; the first non-empty row when none names a field."""
    best, best_score, seen = None, 0, 0
    for position, (_, values) in enumerate(rows):
        if not any(str(v).strip() for v in values):
            continue
        if best is None:
            best = position
        seen += 1
        score = index.score(values)
        if score > best_score:
            best, best_score = position, score
        if seen >= HEADER_SCAN_ROWS:
            break
    if best is None:
        raise ValueError("no non-empty row")
    return best


def map_header(name: str, header: list[str], index: HeaderIndex, *, row: int = 1,
               sheet: str | None = None) -> HeaderMapping:
    """Place every header cell; two cells naming one field reject the file."""
    contract = index.contract
    matches: list[HeaderMatch] = []
    for position, raw in enumerate(header):
        text = str(raw).replace("\ufeff", "").strip()
        hit = index.match(text)
        if hit is None and contract is None and header_key(text):
            # no contract (a file of unknown dataset): the header's own snake_case spelling
            hit = (_snake(text), "name")
        matches.append(HeaderMatch(position, text, hit[0] if hit else None,
                                   hit[1] if hit else None))
    mapping = HeaderMapping(
        contract.name if contract else None, matches, row=row, sheet=sheet,
        required=tuple(contract.required_columns) if contract else (),
        suggestions_for={m.header: g for m in matches if m.field is None
                         and (g := index.guess(m.header)) is not None})
    seen: dict[str, HeaderMatch] = {}
    for match in matches:
        if match.field is None:
            continue
        if match.field in seen:
            first = seen[match.field]
            both = (f"'{first.label}' and '{match.label}'" if mapping.looks_like_header
                    else "two columns")
            raise FileRejected(name, f"{both} both name the field {match.field}; keep one, "
                               "or map one of them to another field in pathlink.toml",
                               row=row, code="duplicate_column")
        seen[match.field] = match
    return mapping


def _snake(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")
