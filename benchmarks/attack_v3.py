"""Attack every Bloom filter and every dob-free token of encoding v3, before (v2) and after (v3).

Usage:
    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/attack_v3.py [--population 20000]
        [--seed 7] [--known 5 20] [--skip-multi-field] [--calibrate]

Prints one table: column, encoding (v2 / v3), attack, what is re-identified, and the share of
records re-identified by an attacker who knows 0, 5 or 20 records (``--known``). Issues 13 and
16 ask for it; the product bar for dob-free fuzzy name evidence is at most 1% of records
(names or dobs) under every attack.

Encodings: "v2" is ``schemas/encoding/v2.json``'s structure (its tokens, filters and hardening;
v2's keyed primitives are retired, so it is encoded under v3's, which the attacks do not depend
on: ``bloom_attack.encodable_spec``); "v3" is ``schemas/encoding/v3.json`` as it is. Both under
one random key the attacker never sees.

Attacker: holds the encoded columns of every record and the published passthrough
(``birth_year``, ``sex``, ``zip3``, ``suffix``); knows the scheme and the public frequency
lists (Faker en_US first / last name weights as the census stand-in; the places, streets and
ZIPs that ``pipelines/synth.py`` draws from; the phone and email conventions below), but NOT
the key. "Known records": the attacker also knows a few records whole (their names, dob, phone,
email: colleagues, or its own family), the first 5 or 20 of one random draw. The share counts
the records whose true value the attacker's guess equals, over all records, the known records
themselves excluded from the hits.

Population (``population``): households of 1-5 people drawn like the attack population of
``bloom_attack`` (names from the Faker weights, dobs uniform over 1940-2004) sharing a family
name and an address drawn as ``pipelines/synth.py`` draws them; 30% of households share one
phone; the others' members have their own (95%), ``860`` (80%) or ``959`` numbers as synth's
``_random_phone`` makes them; 85% have an email built by synth's ``_make_email`` patterns
(``first.last``, ``firstlastNN``, ``flastNN``, ``firstYY``, ``first_last`` at synth's domain
weights). Raw rows go through ``linkage.normalize.normalize_participants``.

Attacks (every one a lower bound on what a determined attacker could do):

* dob. v2 ``bf_dob`` (unsalted y / m / d / full-date elements): ``dob_filter_attack``, equality
  classes plus component mining labelled with the known dobs and the calendar. v3: equality with
  the known records on ``tok_t14_dob``, ``tok_t15_dob_unordered`` and the token set
  ``ts_names_dob_parts``. The candidate ``bf_full_name_md`` (a full-name filter salted by
  month-day; measured here and not adopted, ``md_candidate``): the salt groups are recovered
  from the bits (``md_group_attack``) and labelled by the known records.
* phone, email. v2 ``bf_phone`` / ``bf_email`` (unsalted bigrams): ``bigram_filter_attack``,
  pattern mining (bit components, matched to the bigrams of a simulated public sample, then
  every filter decoded). v3 ``tok_t19_phone`` / ``tok_t20_email``: frequency alignment against
  the public sample, plus equality with the known records.
* dob-free names of v3. ``ts_names_edit``: frequency alignment of whole sets and of token
  values (``edit_token_alignment``), and a structure attack on the token-sharing graph
  (``edit_graph_attack``). The candidate ``bf_full_name_md``: ``bloom_attack``'s component
  mining within each month-day group (the attacker is given the true groups, the worst case),
  strict and
  noise-tolerant (``bloom_attack.find_components_voting``, relaxed acceptance).
* dob-free exact tokens (t8-t13 in v2 and v3, t21 in v3): frequency alignment against the
  public lists (``token_alignment``), plus equality with the known records.
* multi-field filters (``bf_full_name`` by birth year, ``bf_address`` by dob, and the single
  name filters by dob): ``bloom_attack.attack_multi`` per salt group as the attacker sees it.

``--calibrate`` also runs the strict and the noise-tolerant miners on an unsalted
``bf_full_name`` with and without BLIP p = 0.1 (about 4 minutes more), to show what they reach
where the filters are not salted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import jellyfish
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bloom_attack import (
    MIN_GROUP,
    _AttackSecret,
    _unpack,
    _words_of,
    attack_group,
    attack_multi,
    encodable_spec,
    public_addresses,
    public_full_names,
    public_names,
    qgrams,
    salt_groups,
    score_address,
    score_full_name,
    v1_schema,
)

from linkage._address import clean_city, standardize_street
from linkage._names import canonical_given_name
from linkage.encode import (
    EncodingSchema,
    encode_participants,
    load_encoding_schema,
    token_set_values,
)
from linkage.normalize import normalize_participants
from pipelines.synthetic.participants import (
    _EMAIL_DOMAIN_WEIGHTS,
    _EMAIL_DOMAINS,
    _PLACES,
    _STREET_ABBREVIATIONS,
)
from schemas import load_schema

AS_OF = dt.date(2026, 1, 1)
FIRST_DAY, N_DAYS = dt.date(1940, 1, 1), 365 * 65


# --------------------------------------------------------------------------- population


def random_phone(rng: np.random.Generator) -> str:
    """A number as ``pipelines.synth._random_phone`` makes it (860 for 80%, else 959)."""
    area = "860" if rng.random() < 0.8 else "959"
    while True:
        exchange = f"{rng.integers(2, 10)}{rng.integers(0, 10)}{rng.integers(0, 10)}"
        if exchange[1:] != "11" and exchange != "555":
            return f"{area}-{exchange}-{rng.integers(0, 10000):04d}"


def make_email(rng: np.random.Generator, first: str, last: str, year: int) -> str:
    """An address as ``pipelines.synth._make_email`` makes it."""
    first = re.sub(r"[^a-z]", "", first.lower())
    last = re.sub(r"[^a-z]", "", last.lower())
    number = rng.integers(1, 100)
    patterns = (f"{first}.{last}", f"{first}{last}{number}", f"{first[:1]}{last}{number}",
                f"{first}{year % 100:02d}", f"{first}_{last}")
    weights = np.array(_EMAIL_DOMAIN_WEIGHTS) / sum(_EMAIL_DOMAIN_WEIGHTS)
    domain = _EMAIL_DOMAINS[rng.choice(len(_EMAIL_DOMAINS), p=weights)]
    return f"{patterns[rng.integers(len(patterns))]}@{domain}"


def _weighted(table: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    weights = np.array(list(table.values()))
    return np.array(list(table), dtype=object), weights / weights.sum()


def population(n: int, seed: int) -> pd.DataFrame:
    """Raw participant rows in households (see the module docstring)."""
    from faker.providers.person.en_US import Provider

    rng = np.random.default_rng(seed)
    given = {sex: _weighted({k.lower(): v for k, v in table.items()})
             for sex, table in (("F", Provider.first_names_female),
                                ("M", Provider.first_names_male))}
    family_names, family_weights = _weighted({k.lower(): v
                                              for k, v in Provider.last_names.items()})
    place_weights = np.array([p.weight for p in _PLACES])
    rows: list[tuple] = []
    while len(rows) < n:
        size = rng.choice([1, 2, 3, 4, 5], p=[0.45, 0.25, 0.15, 0.1, 0.05])
        family = family_names[rng.choice(len(family_names), p=family_weights)]
        place = _PLACES[rng.choice(len(_PLACES), p=place_weights / place_weights.sum())]
        name, kind = place.streets[rng.integers(len(place.streets))]
        if rng.random() < 0.5:
            kind = _STREET_ABBREVIATIONS.get(kind, kind)
        number = rng.integers(2, 121) if rng.random() < 0.6 else rng.integers(121, 2000)
        parts = [str(number), name] + ([kind] if kind else [])
        if rng.random() < place.multifamily:
            parts.append(f"Apt {rng.integers(1, 4)}")
        street, zip5 = " ".join(parts), place.zips[rng.integers(len(place.zips))]
        home_phone = random_phone(rng) if rng.random() < 0.3 else None
        for _ in range(size):
            sex = "F" if rng.random() < 0.5 else "M"
            names, weights = given[sex]
            first = names[rng.choice(len(names), p=weights)]
            dob = FIRST_DAY + dt.timedelta(days=int(rng.integers(0, N_DAYS)))
            phone = home_phone or (random_phone(rng) if rng.random() < 0.95 else None)
            email = make_email(rng, first, family, dob.year) if rng.random() < 0.85 else None
            rows.append((first, family, dob.isoformat(), sex, street, place.city, "CT", zip5,
                         phone, email))
    return pd.DataFrame(rows[:n], columns=[
        "first_name", "last_name", "date_of_birth", "sex", "street_address", "city", "state",
        "zip", "phone", "email"])


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    column: str
    encoding: str
    attack: str
    measure: str
    shares: list[float]


class Scorer:
    """Shares of records re-identified, the known records excluded from the hits."""

    def __init__(self, truth: pd.DataFrame, known: list[np.ndarray]) -> None:
        self.truth = truth
        self.known = known  # positions of the known records, one array per attacker
        self.n = len(truth)

    def share(self, guess: np.ndarray, field: str | Callable, k: int = 0) -> float:
        """Share of records whose guess equals the truth (``field``: a truth column, or a
        function of the truth frame giving the true values)."""
        true = field(self.truth) if callable(field) else self.truth[field].to_numpy()
        guess = np.asarray(guess, dtype=object)
        hit = np.array([g is not None and g == t for g, t in zip(guess, true, strict=True)])
        hit[self.known[k]] = False
        return float(hit.sum()) / self.n


# --------------------------------------------------------------------------- bit components


def filter_bits(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(bool[n_present, bits], present bool[n])`` of a ``bf_*`` column."""
    present = column.notna().to_numpy()
    return _unpack(_words_of(column[present])), present


def mine_bit_components(bits: np.ndarray, k: int, phi_min: float, min_support: int = 10,
                        always: float = 0.97, closure: float = 0.97, max_seeds: int = 4000,
                        patience: int = 400) -> tuple[list[np.ndarray], np.ndarray]:
    """Bit sets of elements (q-grams, date parts) of an UNSALTED filter, and who holds them.

    An element sets the same k bits in every record that has it, so those bits' columns are
    correlated. For each pair of bits by decreasing phi coefficient (at least ``phi_min``) not
    yet explained: the k bits most lifted among the records having both, then (closure, to a
    fixed point) the bits set in >= ``closure`` of the records holding all but a few of them.
    Bits set in >= ``always`` of the records (elements every value has) are left out. Stops
    after ``max_seeds`` pairs, or ``patience`` pairs in a row that found nothing new.

    Returns ``(components, members)``: bit indices per component and ``bool[n, C]``."""
    n, m = bits.shape
    as_float = bits.astype(np.float32)
    by_column = np.asfortranarray(bits)
    p = as_float.mean(axis=0)
    live = (p < always) & (p > 0)
    sd = np.sqrt(p * (1 - p)) + 1e-12
    phi = ((as_float.T @ as_float) / n - np.outer(p, p)) / np.outer(sd, sd)
    phi[~live] = 0
    phi[:, ~live] = 0
    np.fill_diagonal(phi, 0)
    pairs = np.argwhere(np.triu(phi, 1) > phi_min)
    pairs = pairs[np.argsort(-phi[pairs[:, 0], pairs[:, 1]], kind="stable")]
    explained = np.zeros((m, m), dtype=bool)
    seen: set[tuple[int, ...]] = set()
    components, members = [], []
    idle = 0
    for a, b in pairs:
        if explained[a, b]:
            continue
        max_seeds -= 1
        idle += 1
        if max_seeds < 0 or idle > patience:
            break
        explained[a, b] = explained[b, a] = True
        rows = by_column[:, a] & by_column[:, b]
        if rows.sum() < min_support:
            continue
        lift = (as_float[rows].mean(axis=0) - p) / (1 - p + 1e-9)
        lift[~live] = -1
        chosen = np.argsort(-lift)[:k]
        for _ in range(6):
            rows = by_column[:, chosen].sum(axis=1) >= len(chosen) - max(1, len(chosen) // 8)
            if rows.sum() < min_support:
                break
            closed = np.flatnonzero((as_float[rows].mean(axis=0) >= closure) & live)
            if len(closed) == 0 or set(closed) == set(chosen):
                break
            chosen = closed
        if rows.sum() < min_support or len(chosen) < max(3, k // 3):
            continue
        explained[np.ix_(chosen, chosen)] = True
        key = tuple(sorted(int(c) for c in chosen))
        if key not in seen:
            idle = 0
            seen.add(key)
            components.append(np.array(key))
            members.append(by_column[:, list(key)].all(axis=1))
    return components, (np.stack(members, axis=1) if members else np.zeros((n, 0), bool))


def disjoint_family(members: np.ndarray, candidates: np.ndarray, limit: int) -> list[int]:
    """Greedily (by support) up to ``limit`` candidate components no two of which share a
    record (at most 1% of the smaller one): the values of one date part, say."""
    support = members.sum(axis=0)
    chosen: list[int] = []
    for c in candidates[np.argsort(-support[candidates], kind="stable")]:
        if all((members[:, c] & members[:, d]).sum() <= 0.01 * min(support[c], support[d])
               for d in chosen):
            chosen.append(int(c))
        if len(chosen) == limit:
            break
    return chosen


def item_classes(sample: list[set[str]], jaccard: float = 0.97
                 ) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """The public items (q-grams) of a simulated sample, those that nearly always occur together
    merged into one class (no miner can tell them apart), and the sample's class indicators."""
    vocab = sorted(set().union(*sample))
    index = {g: i for i, g in enumerate(vocab)}
    indicator = np.zeros((len(sample), len(vocab)), dtype=bool)
    for r, grams in enumerate(sample):
        indicator[r, [index[g] for g in grams]] = True
    as_float = indicator.astype(np.float32)
    inter = as_float.T @ as_float
    support = as_float.sum(axis=0)
    similar = inter / np.maximum(support[:, None] + support[None, :] - inter, 1) >= jaccard
    parent = list(range(len(vocab)))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(*np.nonzero(np.triu(similar, 1)), strict=True):
        parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in range(len(vocab)):
        groups.setdefault(root(i), []).append(i)
    classes = sorted(tuple(vocab[i] for i in g) for g in groups.values())
    class_index = {g: c for c, members in enumerate(classes) for g in members}
    out = np.zeros((len(sample), len(classes)), dtype=bool)
    for r, grams in enumerate(sample):
        out[r, [class_index[g] for g in grams]] = True
    return classes, out


def match_components(members: np.ndarray, sample: np.ndarray, known_in: np.ndarray,
                     known_items: np.ndarray, min_margin: float = 1.0, dummy: float = 12.0,
                     rounds: int = 20) -> dict[int, int]:
    """Label mined components with public item classes (graph matching).

    ``members`` (``bool[n, C]``: who holds each component) against ``sample`` (``bool[N, I]``:
    a simulated public sample's item classes), and, for the known records, which components
    they hold (``known_in``, ``bool[K, C]``) and which items their true values have
    (``known_items``, ``bool[K, I]``). Cost of labelling component c with item x: support
    (log-ratio, binomial noise), known-record disagreements (a known record holding the
    component without the item weighs 12, the reverse 2), and co-occurrence with the other
    labelled components against the sample's (chi-square). Greedy first, the component whose
    best label beats the second best by the widest margin (>= ``min_margin``) each step; then
    iterated optimal assignment (Hungarian, ``dummy`` = cost of leaving one unlabelled) with the
    co-occurrence cost of the current labels, until stable."""
    n, n_sample = len(members), len(sample)
    m_float, s_float = members.astype(np.float32), sample.astype(np.float32)
    s = m_float.mean(axis=0) + 0.5 / n
    q = s_float.mean(axis=0) + 0.5 / n_sample
    noise = 0.1 ** 2 + 1 / (n * s[:, None] + 1) + 1 / (n_sample * q[None, :] + 1)
    unary = (np.log(s[:, None]) - np.log(q[None, :])) ** 2 / noise / 2
    if len(known_in):
        k_in, k_items = known_in.astype(np.float32), known_items.astype(np.float32)
        # a component a known record holds whose value lacks the item rules the item out; the
        # reverse is weaker evidence (a component of merged items needs all of them)
        unary = unary + 12.0 * (k_in.T @ (1 - k_items)) + 2.0 * ((1 - k_in).T @ k_items)
    co_m = (m_float.T @ m_float) / n
    co_s = (s_float.T @ s_float) / n_sample
    weight = 1.0 / (co_s * (1 / n + 1 / n_sample) + (0.1 * co_s) ** 2 + 1 / n ** 2)
    n_comp, n_items = unary.shape
    rows = np.arange(n_comp)

    # greedy by margin
    label = np.full(n_comp, -1)
    used = np.zeros(n_items, dtype=bool)
    cost = unary.copy()
    while True:
        free = np.where(used[None, :] | (label >= 0)[:, None], np.inf, cost)
        best = np.argmin(free, axis=1)
        first = free[rows, best]
        free[rows, best] = np.inf
        with np.errstate(invalid="ignore"):
            margin = np.where(np.isfinite(first), free.min(axis=1) - first, -np.inf)
        margin[np.isinf(margin) & np.isfinite(first)] = 1e9
        a = int(np.argmax(margin))
        if margin[a] < min_margin:
            break
        x = int(best[a])
        label[a], used[x] = x, True
        pc, qx = co_m[:, a][:, None], co_s[:, x][None, :]
        spread = pc / n + qx / n_sample + (0.1 * qx) ** 2 + (0.1 * pc) ** 2 + 1e-7
        cost += np.minimum((pc - qx) ** 2 / spread, 9.0)

    def solve(total: np.ndarray) -> np.ndarray:
        full = np.hstack([total, np.full((n_comp, n_comp), dummy, dtype=total.dtype)])
        r, c = linear_sum_assignment(full)
        out = np.full(n_comp, -1)
        inside = c < n_items
        out[r[inside]] = c[inside]
        return out

    for _ in range(rounds):
        done = np.flatnonzero(label >= 0)
        if len(done) == 0:
            break
        p_d, q_d, w_d = co_m[:, done], co_s[:, label[done]], weight[:, label[done]]
        pair = (p_d ** 2) @ w_d.T - 2 * p_d @ (q_d * w_d).T + ((q_d ** 2) * w_d).sum(axis=1)
        for j, c in enumerate(done):  # a component is not compared with itself
            pair[c] -= (co_m[c, c] - q_d[:, j]) ** 2 * w_d[:, j]
        new = solve(unary + 3.0 * pair / len(done))
        if (new == label).all():
            break
        label = new
    return {int(c): int(label[c]) for c in rows if label[c] >= 0}


def held_items(bits: np.ndarray, components: list[np.ndarray], labels: dict[int, int],
               classes: list[tuple[str, ...]]) -> list[set[str]]:
    """Per filter, the q-grams of the labelled components all of whose bits it has."""
    out: list[set[str]] = [set() for _ in range(len(bits))]
    for c, x in labels.items():
        for r in np.flatnonzero(bits[:, components[c]].all(axis=1)):
            out[r].update(classes[x])
    return out


# --------------------------------------------------------------------------- dob


def _valid_date(year: int, month: int, day: int) -> str | None:
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def dob_filter_attack(encoded: pd.DataFrame, known_dobs: list[dict[int, str]]
                      ) -> list[np.ndarray]:
    """v2's unsalted ``bf_dob`` (elements ``y:YYYY``, ``m:MM``, ``d:DD``, the full date).

    Equal filters are equal dobs. Beyond that, component mining (``mine_bit_components``): a
    month's (day's) bits are set in every record born in that month (on that day of a month).
    Components whose records all share one published birth year are years and are set aside;
    the months are the 12 largest components no two of which share a record, the days the 31
    next. They are labelled by: the known records (the month and day components each holds);
    the calendar (day 31 is the least frequent day; the month never seen with day 30 or 31 is
    February, those never seen with day 31 the 30-day months; day 30 is never seen with
    February, day 29 only in leap years); elimination (the last unlabelled month of a group of
    equal length, the last unlabelled day of 1-28). A record's dob is guessed when both its
    month and day components are labelled (year: published); a record sharing its filter with
    a known record gets that record's dob. Returns one guess array per attacker."""
    column = encoded["bf_dob"]
    bits, present = filter_bits(column)
    _components, members = mine_bit_components(bits, k=20, phi_min=0.05)
    years = encoded["birth_year"].to_numpy()[present]
    support = members.sum(axis=0)
    is_year = np.array([len(set(years[members[:, c]])) == 1 for c in range(members.shape[1])])
    candidates = np.flatnonzero(~is_year & (support >= 0.005 * len(bits)))
    months = disjoint_family(members, candidates, 12)
    days = disjoint_family(members, np.setdiff1d(candidates, months), 31)
    positions = np.flatnonzero(present)

    def co(a: int, b: int, leap: bool | None = None) -> int:
        rows = members[:, a] & members[:, b]
        if leap is not None:
            rows &= np.array([(y % 4 == 0) == leap for y in years])
        return int(rows.sum())

    structural_month: dict[int, int] = {}
    structural_day: dict[int, int] = {}
    short: list[int] = []
    if len(months) == 12 and len(days) == 31:
        day31 = min(days, key=lambda d: support[d])
        structural_day[day31] = 31
        short = [m for m in months if co(m, day31) == 0]
        never = {m: [d for d in days if co(m, d) == 0] for m in short}
        february = max(short, key=lambda m: len(never[m]))
        structural_month[february] = 2
        for d in days:
            if d != day31 and co(february, d) == 0:
                structural_day[d] = 30
            elif d != day31 and co(february, d, leap=False) == 0 and co(february, d) > 0:
                structural_day[d] = 29
    out = []
    for known in known_dobs:
        month_of = dict(structural_month)
        day_of = dict(structural_day)
        for position, dob in known.items():
            row = np.searchsorted(positions, position)
            if row >= len(positions) or positions[row] != position:
                continue
            month, day = int(dob[5:7]), int(dob[8:10])
            for m in months:
                if members[row, m]:
                    month_of[m] = month
            for d in days:
                if members[row, d]:
                    day_of[d] = day
        for group, values in (([m for m in short if m not in structural_month], {4, 6, 9, 11}),
                              ([m for m in months if m not in short], {1, 3, 5, 7, 8, 10, 12})):
            open_ = [m for m in group if m not in month_of]
            left = values - {month_of[m] for m in group if m in month_of}
            if len(open_) == 1 and len(left) == 1:
                month_of[open_[0]] = left.pop()
        open_days = [d for d in days if d not in day_of]
        left_days = set(range(1, 29)) - set(day_of.values())
        if len(open_days) == 1 and len(left_days) == 1:
            day_of[open_days[0]] = left_days.pop()
        guess = np.full(len(encoded), None, dtype=object)
        for row, position in enumerate(positions):
            m = next((month_of[c] for c in months if members[row, c] and c in month_of), None)
            d = next((day_of[c] for c in days if members[row, c] and c in day_of), None)
            if m and d:
                guess[position] = _valid_date(int(years[row]), m, d)
        by_filter = {column.iloc[p]: dob for p, dob in known.items()}
        for position, value in enumerate(column):
            if value in by_filter:
                guess[position] = by_filter[value]
        out.append(guess)
    return out


def token_equality(column: pd.Series, known: dict[int, object]) -> np.ndarray:
    """Per record, the known value of the known record it shares its token with (or None)."""
    by_value = {column.iloc[p]: v for p, v in known.items() if column.iloc[p] is not None}
    return np.array([by_value.get(v) if v is not None else None for v in column], dtype=object)


def dob_token_attacks(encoded: pd.DataFrame, known_dobs: list[dict[int, str]]
                      ) -> dict[str, list[np.ndarray]]:
    """v3's dob tokens against the known dobs (equality classes with the published birth year).

    ``tok_t14_dob``: a record sharing the token has the known dob. ``tok_t15_dob_unordered``
    (year, the smaller and the larger of month and day): a record sharing it has the known dob
    if it also shares ``tok_t14_dob``, else the known dob with month and day swapped.
    ``ts_names_dob_parts`` (name pair with year-month, year-day, month-day; tokens sorted, so
    which part matched is hidden): a record sharing a token with a known record and born in
    another (published) year shares the month-day; a record of the same year is not guessed."""
    years = encoded["birth_year"].to_numpy()
    sets, present = token_set_values(encoded["ts_names_dob_parts"])
    out: dict[str, list[np.ndarray]] = {"t14": [], "t15": [], "parts": []}
    for known in known_dobs:
        out["t14"].append(token_equality(encoded["tok_t14_dob"], known))
        same = token_equality(encoded["tok_t15_dob_unordered"], {
            p: (dob, encoded["tok_t14_dob"].iloc[p]) for p, dob in known.items()})
        t15 = np.full(len(encoded), None, dtype=object)
        for i, hit in enumerate(same):
            if hit is not None:
                dob, t14 = hit
                t15[i] = dob if encoded["tok_t14_dob"].iloc[i] == t14 else _valid_date(
                    int(dob[:4]), int(dob[8:10]), int(dob[5:7]))
        out["t15"].append(t15)
        parts = np.full(len(encoded), None, dtype=object)
        for p, dob in known.items():
            if not present[p]:
                continue
            shares = present & np.isin(sets, sets[p]).any(axis=1)
            for i in np.flatnonzero(shares):
                if i != p and years[i] != years[p] and not pd.isna(years[i]):
                    parts[i] = _valid_date(int(years[i]), int(dob[5:7]), int(dob[8:10]))
        out["parts"].append(parts)
    return out


def md_group_attack(encoded: pd.DataFrame, known_dobs: list[dict[int, str]],
                    rounds: int = 10) -> list[np.ndarray]:
    """``bf_full_name_md`` is salted by month-day: the records of one month-day (about n / 366)
    share one keyed transform, so the bigrams their names share set the same bits. That is
    visible without the key. From each known record: its neighbours by overlap above chance
    (z-score), then a bit profile of the group (the share of its members with each bit set),
    re-estimated ``rounds`` times from the n / 365 records most likely under it (log-likelihood
    ratio against the population's bit shares); the records whose likelihood ratio exceeds
    365 (posterior odds above even) are taken to share the known record's month-day, and get
    that month-day with their published birth year. The records sharing ``tok_t14_dob`` with a
    known record are in its group too."""
    column = encoded["bf_full_name_md"]
    bits, present = filter_bits(column)
    positions = np.flatnonzero(present)
    x = bits.astype(np.float32)
    n_bits = bits.shape[1]
    counts = x.sum(axis=1)
    base = x.mean(axis=0)
    size = max(round(len(bits) / 365.25), 5)
    years = encoded["birth_year"].to_numpy()[present]
    t14 = encoded["tok_t14_dob"]

    def z_scores(rows: np.ndarray) -> np.ndarray:
        overlap = x @ x[rows].T
        chance = np.outer(counts, counts[rows]) / n_bits
        spread = np.sqrt(chance * (1 - counts[rows][None] / n_bits)
                         * (1 - counts[:, None] / n_bits)) + 1e-9
        return (overlap - chance) / spread

    cache: dict[int, np.ndarray] = {}

    def group_of(row: int) -> np.ndarray:
        if row not in cache:
            z = z_scores(np.array([row]))[:, 0]
            first = np.argsort(-z)[1:9]
            score = z + z_scores(first).mean(axis=1)
            score[row] = np.inf
            members = np.argsort(-score)[:16]
            llr = np.zeros(len(bits))
            for _ in range(rounds):
                profile = (x[members].sum(axis=0) + 3 * x[row] + 2 * base) / (len(members) + 5)
                w1, w0 = np.log(profile / base), np.log((1 - profile) / (1 - base))
                llr = x @ (w1 - w0) + w0.sum()
                members = np.union1d(np.argsort(-llr)[:size], [row])
            cache[row] = llr > np.log(365)
        return cache[row]

    out = []
    for known in known_dobs:
        guess = np.full(len(encoded), None, dtype=object)
        for p, dob in known.items():
            row = np.searchsorted(positions, p)
            if row < len(positions) and positions[row] == p:
                for r in np.flatnonzero(group_of(int(row))):
                    guess[positions[r]] = _valid_date(int(years[r]), int(dob[5:7]),
                                                      int(dob[8:10]))
            same_dob = (t14 == t14.iloc[p]).to_numpy() & t14.notna().to_numpy()
            guess[same_dob] = dob
        out.append(guess)
    return out


# --------------------------------------------------------------------------- phone, email


def _digits_path(held: set[str], start: str, length: int, end_pad: str) -> list[str]:
    """Digit strings of ``length`` following ``start``'s last digit whose bigrams (and the end
    pad) are all held and cover every held digit bigram; at most 3."""
    digits = "0123456789"
    found: list[str] = []
    need = {g for g in held if g[0] in digits and g[1] in digits}

    def walk(prefix: str) -> None:
        if len(found) >= 3:
            return
        if len(prefix) == length:
            if prefix[-1] + end_pad in held:
                grams = {a + b for a, b in zip(start[-1] + prefix, prefix, strict=False)}
                grams |= {a + b for a, b in itertools.pairwise(start)}
                if need <= grams:
                    found.append(prefix)
            return
        last = (start + prefix)[-1]
        for d in digits:
            if last + d in held:
                walk(prefix + d)

    walk("")
    return found


def decode_phone(held: set[str]) -> str | None:
    """An E.164 number whose bigrams are exactly the held ones: the first of at most three
    (a repeated digit can leave several orders; the attacker guesses one of them)."""
    pad = "\x01"
    options = []
    for area in ("860", "959"):
        if all(a + b in held for a, b in itertools.pairwise("1" + area)):
            options += ["+1" + area + rest for rest in _digits_path(held, "1" + area, 7, pad)]
    return options[0] if options else None


def _inner(text: str) -> set[str]:
    return {x + y for x, y in itertools.pairwise(text)}


class EmailDecoder:
    """Decode a filter's held bigrams into an address of synth's patterns.

    Only bigrams the attack labelled (``labelled``) count: one it could not label is neither
    required nor excluded. Candidates: the domains, first names starting with the held start
    letter, last names starting with a held bigram (each missing at most one of its labelled
    bigrams: a mislabelled component), numbers 1-99, the two digits of the published birth
    year, the best few of each by their own bigrams, in synth's five patterns. Score: labelled
    bigrams of the candidate that are held, less twice those that are not and those held that
    the candidate lacks; the best candidate (ties: public weights) is the guess when it misses
    or adds at most 2."""

    def __init__(self, first: dict[str, float], last: dict[str, float]) -> None:
        self.first, self.last = first, last
        self.labelled: set[str] = set()
        self.first_by_letter: dict[str, list[str]] = {}
        for f in sorted(first, key=first.get, reverse=True):
            self.first_by_letter.setdefault(f[0], []).append(f)
        self.last_by_start: dict[str, list[str]] = {}
        for x in sorted(last, key=last.get, reverse=True):
            self.last_by_start.setdefault(x[:2], []).append(x)

    def _misses(self, grams: set[str], held: set[str]) -> int:
        return len((grams & self.labelled) - held)

    def __call__(self, held: set[str], year: int | None) -> str | None:
        pad = "\x01"
        letters = [g[1] for g in held if g[0] == pad]
        if len(letters) != 1:
            return None
        letter = letters[0]
        def part_score(grams: set[str]) -> int:
            grams = grams & self.labelled
            return len(grams & held) - 2 * len(grams - held)

        def best_of(options: list[str], grams_of, keep: int) -> list[str]:
            return sorted(options, key=lambda o: -part_score(grams_of(o)))[:keep]

        domains = best_of(list(_EMAIL_DOMAINS), lambda d: _inner("@" + d) | {d[-1] + pad}, 1)
        firsts = best_of([f for f in self.first_by_letter.get(letter, [])
                          if self._misses(_inner(f), held) <= 1], _inner, 3)
        lasts = {x for g in held if g[0].isalpha() and g[1].isalpha()
                 for x in self.last_by_start.get(g, []) if self._misses(_inner(x), held) <= 1}
        lasts = best_of(sorted(lasts, key=self.last.get, reverse=True), _inner, 5)
        numbers = best_of([str(i) for i in range(1, 100)], lambda i: _inner(f"{i}@"), 3)
        candidates: list[tuple[float, str]] = []
        for f in firsts:
            if year is not None:
                candidates.append((self.first[f] * 0.2, f"{f}{year % 100:02d}"))
            for x in lasts:
                prior = self.first[f] * self.last[x] * 0.2
                candidates += [(prior, f"{f}.{x}"), (prior, f"{f}_{x}")]
                candidates += [(prior / 99, f"{f}{x}{i}") for i in numbers]
        for x in lasts:
            candidates += [(self.last[x] * 0.2 / 26 / 99, f"{letter}{x}{i}") for i in numbers]
        labelled_held = held & self.labelled
        best, best_score, best_prior, best_bad = None, -np.inf, 0.0, 0
        for prior, local in candidates:
            for domain in domains:
                email = f"{local}@{domain}"
                grams = qgrams(email) & self.labelled
                hit = len(grams & labelled_held)
                bad = len(grams) - hit + len(labelled_held - grams)
                score = hit - 2 * bad
                if score > best_score or (score == best_score and prior > best_prior):
                    best, best_score, best_prior, best_bad = email, score, prior, bad
        return best if best is not None and best_bad <= 2 else None


def bigram_filter_attack(encoded: pd.DataFrame, field: str, k: int, phi_min: float,
                         sample: list[str], decode: Callable[[set[str], int], str | None],
                         known_values: list[dict[int, str]]) -> list[np.ndarray]:
    """Pattern mining on an unsalted bigram filter (v2's ``bf_phone``, ``bf_email``).

    Bit components (``mine_bit_components``) are labelled with bigram classes of a simulated
    public sample (``sample``: values drawn as the attacker believes they are made) by graph
    matching (``match_components``), with the known records' values when there are any; each
    filter is then decoded (``decode``) from the bigrams whose bits it holds. Equal filters of a
    known record give its value. Returns one guess array per attacker."""
    column = encoded[f"bf_{field}"]
    bits, present = filter_bits(column)
    components, members = mine_bit_components(bits, k=k, phi_min=phi_min)
    classes, sample_items = item_classes([qgrams(v) for v in sample])
    positions = np.flatnonzero(present)
    years = encoded["birth_year"].to_numpy()[present]
    out = []
    for known in known_values:
        rows = [int(np.searchsorted(positions, p)) for p in known if present[p]]
        values = [known[p] for p in known if present[p]]
        known_items = np.array([[any(g in qgrams(v) for g in c) for c in classes]
                                for v in values], dtype=bool).reshape(len(values), len(classes))
        labels = match_components(members, sample_items, members[rows], known_items)
        if hasattr(decode, "labelled"):
            decode.labelled = {g for x in labels.values() for g in classes[x]}
        held = held_items(bits, components, labels, classes)
        guess = np.full(len(encoded), None, dtype=object)
        for row, position in enumerate(positions):
            year = None if pd.isna(years[row]) else int(years[row])
            guess[position] = decode(held[row], year)
        by_filter = {column.iloc[p]: v for p, v in known.items() if present[p]}
        for position in positions:
            if column.iloc[position] in by_filter:
                guess[position] = by_filter[column.iloc[position]]
        out.append(guess)
    return out


def public_phone_sample(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed + 101)
    return ["+1" + random_phone(rng).replace("-", "") for _ in range(n)]


def public_email_sample(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed + 102)
    names = public_names()
    first, first_w = _weighted(names["given_name"])
    last, last_w = _weighted(names["family_name"])
    f = first[rng.choice(len(first), size=n, p=first_w)]
    x = last[rng.choice(len(last), size=n, p=last_w)]
    years = 1940 + rng.integers(0, 65, size=n)
    return [make_email(rng, a, b, int(y)) for a, b, y in zip(f, x, years, strict=True)]


def value_alignment(column: pd.Series, ranked: list, top: int = 100) -> np.ndarray:
    """Frequency alignment: the i-th most frequent token value (top ``top`` occurring at least
    twice) is guessed to be the i-th most likely public value."""
    counts = column.value_counts()
    frequent = counts[counts >= 2].index[:top]
    guess = dict(zip(frequent, ranked, strict=False))
    return np.array([guess.get(v) if v is not None else None for v in column], dtype=object)


def _union(*guesses: np.ndarray) -> np.ndarray:
    """The first guess of each record among several attacks' guesses."""
    out = np.full(len(guesses[0]), None, dtype=object)
    for g in guesses:
        empty = np.array([v is None for v in out])
        out[empty] = np.asarray(g, dtype=object)[empty]
    return out


# --------------------------------------------------------------------------- names


def _variants(name: str, max_edit_length: int = 15) -> set[str]:
    """A value and its single-character deletions, as ``ts_names_edit`` holds them."""
    return {name, *(name[:i] + name[i + 1:] for i in range(min(len(name), max_edit_length)))}


def _variant_weights(table: dict[str, float]) -> dict[str, float]:
    """Public weight of each variant: the summed weight of the names holding it."""
    total = sum(table.values())
    out: dict[str, float] = {}
    for name, weight in table.items():
        for v in _variants(name):
            out[v] = out.get(v, 0.0) + weight / total
    return out


def edit_token_alignment(encoded: pd.DataFrame, top: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Frequency alignment on ``ts_names_edit``.

    Whole sets: equal sets are equal (given, family) pairs; the i-th most frequent set (top
    ``top`` occurring at least twice) is guessed to be the i-th most likely public pair.
    Token values: a token stands for (given variant, family) or (given, family variant); its
    expected count is n * (A(x) P(y) + P(x) B(y) - P(x) P(y)) with A, B the public weight of a
    variant (summed over the names holding it) and P the weight of a name. The i-th most
    frequent token value is guessed to be the i-th most likely public token; a record is
    guessed the (given, family) of its highest-ranked aligned token whose two parts are public
    names. Returns the two guess arrays of (given, family)."""
    names = public_names()
    first, last = names["given_name"], names["family_name"]
    t_first, t_last = sum(first.values()), sum(last.values())
    p_first = {k: v / t_first for k, v in first.items()}
    p_last = {k: v / t_last for k, v in last.items()}
    top_first = sorted(p_first, key=p_first.get, reverse=True)[:300]
    top_last = sorted(p_last, key=p_last.get, reverse=True)[:300]
    pairs = sorted(itertools.product(top_first, top_last),
                   key=lambda p: -p_first[p[0]] * p_last[p[1]])[:top]
    sets, present = token_set_values(encoded["ts_names_edit"])
    keys = pd.Series([s.tobytes() if ok else None for s, ok in zip(sets, present, strict=True)])
    whole = value_alignment(keys, pairs, top)

    a_first, b_last = _variant_weights(first), _variant_weights(last)
    top_a = sorted(a_first, key=a_first.get, reverse=True)[:300]
    top_b = sorted(b_last, key=b_last.get, reverse=True)[:300]
    keys = set(itertools.product(top_a, top_last)) | set(itertools.product(top_first, top_b))
    expected = {(x, y): a_first.get(x, 0.0) * p_last.get(y, 0.0)
                + p_first.get(x, 0.0) * b_last.get(y, 0.0)
                - p_first.get(x, 0.0) * p_last.get(y, 0.0) for x, y in keys}
    ranked = sorted(expected, key=expected.get, reverse=True)[:top]
    flat = pd.Series(sets[present].ravel())
    counts = flat.value_counts()
    frequent = counts[counts >= 2].index[:top]
    rank = {int(v): i for i, v in enumerate(frequent)}
    tokens = np.full(len(encoded), None, dtype=object)
    for row in np.flatnonzero(present):
        hits = sorted(rank[int(v)] for v in sets[row] if int(v) in rank)
        for i in hits:
            x, y = ranked[i] if i < len(ranked) else (None, None)
            if x in p_first and y in p_last:
                tokens[row] = (x, y)
                break
    return whole, tokens


def _edit_pairs(table: dict[str, float]) -> list[tuple[str, str, int]]:
    """Pairs of public names within one edit of each other, with the number of variant tokens
    they share (what ``ts_names_edit`` would show)."""
    by_variant: dict[str, list[str]] = {}
    for name in table:
        for v in _variants(name):
            by_variant.setdefault(v, []).append(name)
    shared: dict[tuple[str, str], int] = {}
    for group in by_variant.values():
        for a, b in itertools.combinations(sorted(group), 2):
            shared[(a, b)] = shared.get((a, b), 0) + 1
    return [(a, b, s) for (a, b), s in shared.items()]


def edit_graph_attack(encoded: pd.DataFrame, top: int = 300) -> np.ndarray:
    """Structure attack on the ``ts_names_edit`` token-sharing graph.

    Nodes are distinct sets (distinct (given, family) pairs) with their record counts; two
    nodes are joined when they share tokens (one name equal, the other within one edit), the
    edge weighted by the number of shared tokens. The attacker computes the same for public
    pairs: every pair of public names within one edit (and how many tokens they would share),
    combined with each of the ``top`` most frequent names of the other field. Each connected
    component of exactly two nodes is matched to the public configuration with the same
    shared-token count that best explains its two record counts (Poisson log-likelihood with
    the public weights, both orders), a public configuration used once, the most likely
    first. Larger components are not guessed. Returns the guesses of (given, family)."""
    sets, present = token_set_values(encoded["ts_names_edit"])
    rows = np.flatnonzero(present)
    keys = pd.Series([sets[r].tobytes() for r in rows])
    node_of, uniques = pd.factorize(keys)
    counts = np.bincount(node_of)
    node_sets = np.stack([np.frombuffer(u, dtype="<u8") for u in uniques])
    flat_node = np.repeat(np.arange(len(uniques)), node_sets.shape[1])
    flat = pd.DataFrame({"token": node_sets.ravel(), "node": flat_node})
    shared_tokens = flat[flat.duplicated("token", keep=False)]
    edges: dict[tuple[int, int], int] = {}
    for _, group in shared_tokens.groupby("token")["node"]:
        for a, b in itertools.combinations(sorted(group.to_numpy()), 2):
            edges[(a, b)] = edges.get((a, b), 0) + 1
    degree = np.zeros(len(uniques), dtype=int)
    for a, b in edges:
        degree[a] += 1
        degree[b] += 1
    pairs_2 = [(a, b, w) for (a, b), w in edges.items() if degree[a] == 1 and degree[b] == 1]

    names = public_names()
    n = len(rows)
    prob = {f: {k: v / sum(t.values()) for k, v in t.items()} for f, t in names.items()}
    configs: dict[int, list[tuple[float, float, tuple, tuple]]] = {}
    for field, other in (("given_name", "family_name"), ("family_name", "given_name")):
        partners = sorted(prob[other], key=prob[other].get, reverse=True)[:top]
        for a, b, w in _edit_pairs(prob[field]):
            for o in partners:
                la, lb = n * prob[field][a] * prob[other][o], n * prob[field][b] * prob[other][o]
                pa = (a, o) if field == "given_name" else (o, a)
                pb = (b, o) if field == "given_name" else (o, b)
                configs.setdefault(w, []).append((la, lb, pa, pb))

    rates = {w: (np.array([o[0] for o in options]), np.array([o[1] for o in options]))
             for w, options in configs.items()}
    logs = {w: (np.log(la), np.log(lb)) for w, (la, lb) in rates.items()}
    # components with the same counts and shared-token count look alike: rank once per kind
    kinds: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    for a, b, w in pairs_2:
        if w in configs:
            kinds.setdefault((int(counts[a]), int(counts[b]), w), []).append((a, b))
    ranked = []
    for (ca, cb, w), members in kinds.items():
        (la, lb), (log_a, log_b) = rates[w], logs[w]
        forward = ca * log_a - la + cb * log_b - lb
        backward = ca * log_b - lb + cb * log_a - la
        best = np.maximum(forward, backward)
        keep = min(len(best) - 1, 50 * len(members))
        order = np.argpartition(-best, keep)[: keep + 1]
        order = order[np.argsort(-best[order], kind="stable")]
        ranked.append((float(best[order[0]]), w, members, order, forward, backward))
    guesses: dict[int, tuple[str, str]] = {}
    used: set[tuple] = set()
    for _, w, members, order, forward, backward in sorted(ranked, key=lambda r: -r[0]):
        options = configs[w]
        candidates = iter(order)
        for a, b in members:
            for i in candidates:
                pa, pb = options[i][2], options[i][3]
                if (pa, pb) in used:
                    continue
                used.add((pa, pb))
                guesses[a], guesses[b] = (pa, pb) if forward[i] >= backward[i] else (pb, pa)
                break
    out = np.full(len(encoded), None, dtype=object)
    for r, node in zip(rows, node_of, strict=True):
        out[r] = guesses.get(int(node))
    return out


def pairs_of(*fields: str) -> Callable[[pd.DataFrame], np.ndarray]:
    """The truth as tuples of ``fields`` (an object array), for ``Scorer.share``."""
    def truth(frame: pd.DataFrame) -> np.ndarray:
        out = np.empty(len(frame), dtype=object)
        out[:] = list(zip(*(frame[f] for f in fields), strict=True))
        return out

    return truth


NAMES = pairs_of("given_name", "family_name")


def name_share(scorer: Scorer, guess: np.ndarray, k: int) -> float:
    """Share of records whose (given, family) guess is right."""
    return scorer.share(guess, NAMES, k)


# --------------------------------------------------------------------------- exact tokens


def _ranked(weights: dict, top: int = 100) -> list:
    return sorted(weights, key=weights.get, reverse=True)[:top]


def public_token_rankings(top: int = 100) -> dict[str, tuple[list, Callable]]:
    """Per dob-free exact token, the attacker's ranking of public values (most likely first)
    and the truth function the guesses are scored against."""
    names = public_names()
    first, last = names["given_name"], names["family_name"]
    best_first, best_last = _ranked(first, 300), _ranked(last, 300)

    def product(m1: dict, m2: dict) -> list:
        b1, b2 = _ranked(m1, 300), _ranked(m2, 300)
        return _ranked({(a, b): m1[a] * m2[b] for a in b1 for b in b2}, top)

    def mapped(table: dict, function: Callable) -> dict:
        out: dict[str, float] = {}
        for name, weight in table.items():
            out[function(name)] = out.get(function(name), 0.0) + weight
        return out

    unordered: dict[tuple, float] = {}
    for a, b in itertools.product(best_first, best_last):
        key = (min(a, b), max(a, b))
        unordered[key] = unordered.get(key, 0.0) + first[a] * last[b]

    total = sum(p.weight for p in _PLACES)
    lines: dict[tuple, float] = {}
    for place in _PLACES:
        for name, kind in place.streets:
            share = place.weight / total / len(place.streets) * 0.6 / 119
            for number in range(2, 121):
                for unit, p_unit in ((None, 1 - place.multifamily),
                                     *((f"APT {f}", place.multifamily / 3) for f in (1, 2, 3))):
                    for z in place.zips:
                        lines[(number, name, kind, unit, place.city, z)] = (
                            share * p_unit / len(place.zips))
    top_lines = _ranked(lines, 3000)

    def standard(item: tuple) -> tuple[str, str, str]:
        number, name, kind, unit, city, z = item
        text = " ".join(x for x in (str(number), name, kind) if x)
        street = standardize_street(text, None, None, None)
        return (f"{street} {unit}" if unit else street), clean_city(city), z

    street_lines = [(*standard(item), lines[item]) for item in top_lines]
    street_city: dict[tuple, float] = {}
    street_zip: dict[tuple, float] = {}
    for street, city, z, p in street_lines:
        street_city[(street, city)] = street_city.get((street, city), 0.0) + p
        street_zip[(street, z)] = street_zip.get((street, z), 0.0) + p
    t_last = sum(last.values())
    household = {(f, s, z): last[f] / t_last * p
                 for f in best_last[:100] for (s, z), p in
                 sorted(street_zip.items(), key=lambda kv: -kv[1])[:300]}

    cols = pairs_of

    return {
        "t8_first_last": (product(first, last), cols("given_name", "family_name")),
        "t9_street_city": (_ranked(street_city, top), cols("street", "city")),
        "t10_phonetic_pair": (product(mapped(first, jellyfish.nysiis),
                                      mapped(last, jellyfish.nysiis)),
                              cols("given_name_phonetic", "family_name_phonetic")),
        "t11_names_sorted": (_ranked(unordered, top), cols("name_pair_low", "name_pair_high")),
        "t12_canonical_first_last": (product(mapped(first, canonical_given_name), last),
                                     cols("given_name_canonical", "family_name")),
        "t13_street_zip5": (_ranked(street_zip, top), cols("street", "zip5")),
        "t21_household": (_ranked(household, top), cols("family_name", "street", "zip5")),
    }


# --------------------------------------------------------------------------- main


REJECTED = "v3 candidate (not adopted)"


def md_candidate() -> EncodingSchema:
    """v3 plus the candidate that was not adopted: a full-name filter salted by the dob's
    month-day (fuzzy names across a year typo). Its name leak is nil, but records of one
    month-day share a keyed transform, so the attack finds those groups from the bits and
    each known dob labels one (docs/decisions/0006-encoding-v3-linkage-v5.md)."""
    spec = load_schema("encoding", 3)
    spec["bloom"]["full_name_md"] = {"source": ["given_name", "family_name"],
                                     "elements": "qgrams", "q": 2, "k": 10, "filter_bits": 512}
    spec["hardening"]["applies_to"].append("full_name_md")
    spec["hardening"]["salt_by_field"]["full_name_md"] = "dob_month_day"
    return EncodingSchema.from_dict(spec)


def run(n: int, seed: int, known_sizes: list[int], multi_field: bool, calibrate: bool) -> None:
    start = time.perf_counter()
    raw = population(n, seed)
    truth = normalize_participants(raw, as_of=AS_OF)
    pairs = list(zip(truth["given_name"], truth["family_name"], strict=True))
    truth["name_pair_low"] = [min(p) for p in pairs]
    truth["name_pair_high"] = [max(p) for p in pairs]
    secret = _AttackSecret(seed)
    v2 = EncodingSchema.from_dict(encodable_spec(2))
    v3 = load_encoding_schema(3)
    v3md = md_candidate()
    enc = {"v2": encode_participants(truth, secret, v2).reset_index(drop=True),
           "v3": encode_participants(truth, secret, v3).reset_index(drop=True),
           "v3md": encode_participants(truth, secret, v3md).reset_index(drop=True)}
    truth = truth.reset_index(drop=True)
    order = np.random.default_rng(seed + 11).permutation(n)
    sizes = [0, *known_sizes]
    known = [np.sort(order[:k]) for k in sizes]
    scorer = Scorer(truth, known)
    known_dob = [{int(p): truth["dob"].iloc[p] for p in ks if truth["dob"].iloc[p]}
                 for ks in known]

    def known_of(field: str) -> list[dict[int, object]]:
        return [{int(p): truth[field].iloc[p] for p in ks if truth[field].iloc[p] is not None}
                for ks in known]

    rows: list[Row] = []

    def add(column: str, encoding: str, attack: str, measure: str, shares: list[float]) -> None:
        rows.append(Row(column, encoding, attack, measure, shares))
        print(f"  [{column} {encoding} {attack}: "
              f"{', '.join(f'{s:.2%}' for s in shares)}; {time.perf_counter() - start:.0f} s]",
              flush=True)

    print(f"population {n:,} records ({time.perf_counter() - start:.0f} s to draw, normalize "
          f"and encode v2 and v3); known records: {', '.join(map(str, sizes))}", flush=True)
    each = range(len(sizes))

    # dob ------------------------------------------------------------------------------------
    guesses = dob_filter_attack(enc["v2"], known_dob)
    add("bf_dob", "v2", "equality classes + component mining, labelled by known dobs",
        "dob", [scorer.share(guesses[k], "dob", k) for k in each])
    tokens = dob_token_attacks(enc["v3"], known_dob)
    add("tok_t14_dob", "v3", "equality with known records", "dob",
        [scorer.share(tokens["t14"][k], "dob", k) for k in each])
    add("tok_t15_dob_unordered", "v3", "equality with known records (+ t14)", "dob",
        [scorer.share(tokens["t15"][k], "dob", k) for k in each])
    add("ts_names_dob_parts", "v3", "shared token with known records, other birth year",
        "dob", [scorer.share(tokens["parts"][k], "dob", k) for k in each])
    add("all v3 dob evidence", "v3", "union of the three rows above", "dob",
        [scorer.share(_union(tokens["t14"][k], tokens["t15"][k], tokens["parts"][k]),
                      "dob", k) for k in each])
    md = md_group_attack(enc["v3md"], known_dob)
    add("bf_full_name_md", REJECTED, "salt groups from the bits, labelled by known dobs",
        "dob", [scorer.share(md[k], "dob", k) for k in each])

    # phone, email ---------------------------------------------------------------------------
    names = public_names()
    phones = bigram_filter_attack(enc["v2"], "phone", 15, 0.08,
                                  public_phone_sample(50_000, seed),
                                  lambda held, _: decode_phone(held), known_of("phone"))
    add("bf_phone", "v2", "pattern mining (components matched to public bigrams)", "phone",
        [scorer.share(phones[k], "phone", k) for k in each])
    email_sample = public_email_sample(60_000, seed)
    emails = bigram_filter_attack(enc["v2"], "email", 10, 0.03, email_sample,
                                  EmailDecoder(names["given_name"], names["family_name"]),
                                  known_of("email"))
    add("bf_email", "v2", "pattern mining (components matched to public bigrams)", "email",
        [scorer.share(emails[k], "email", k) for k in each])
    ranked_phones = list(pd.Series(public_phone_sample(50_000, seed + 1)).value_counts().index)
    ranked_emails = list(pd.Series(email_sample).value_counts().index)
    for field, token, ranked in (("phone", "tok_t19_phone", ranked_phones),
                                 ("email", "tok_t20_email", ranked_emails)):
        aligned = value_alignment(enc["v3"][token], ranked)
        add(token, "v3", "frequency alignment (+ equality with known records)", field,
            [scorer.share(_union(aligned, token_equality(enc["v3"][token], values)), field, k)
             for k, values in zip(each, known_of(field), strict=True)])

    # dob-free names of v3 -------------------------------------------------------------------
    whole, by_token = edit_token_alignment(enc["v3"])
    add("ts_names_edit", "v3", "frequency alignment of whole sets", "name (first + last)",
        [name_share(scorer, whole, k) for k in each])
    add("ts_names_edit", "v3", "frequency alignment of token values", "name (first + last)",
        [name_share(scorer, by_token, k) for k in each])
    graph = edit_graph_attack(enc["v3"])
    add("ts_names_edit", "v3", "token-sharing graph: 2-node components to public pairs",
        "name (first + last)", [name_share(scorer, graph, k) for k in each])
    md_groups = pd.Series(truth["dob"].str[5:].to_numpy(), index=enc["v3"].index)
    for tolerant in (False, True):
        result = attack_multi(enc["v3md"], public_full_names(), v3md.bloom["full_name_md"].k,
                              None, seed, groups=md_groups.fillna(""), min_group=20,
                              tolerant=tolerant, column=enc["v3md"]["bf_full_name_md"])
        label = "noise-tolerant mining" if tolerant else "component mining"
        for attack, guess in result.items():
            if tolerant and attack == "align":
                continue
            add("bf_full_name_md", REJECTED,
                f"{label if attack == 'mine' else 'frequency alignment'} per true month-day "
                f"group", "name (first + last)",
                [name_share(scorer, guess.to_numpy(), k) for k in each])

    # dob-free exact tokens ------------------------------------------------------------------
    rankings = public_token_rankings()
    for token, (ranked, true_of) in rankings.items():
        for version in ("v2", "v3"):
            column = enc[version].get(f"tok_{token}")
            if column is None:
                continue
            aligned = value_alignment(column, ranked)
            true = true_of(truth)
            shares = []
            for k in each:
                equal = token_equality(column, {int(p): true[p] for p in known[k]})
                shares.append(scorer.share(_union(aligned, equal), true_of, k))
            measure = {"t9_street_city": "street line + city",
                       "t13_street_zip5": "street line + ZIP",
                       "t21_household": "family + street line + ZIP"}.get(token, "name pair")
            add(f"tok_{token}", version, "frequency alignment (+ equality with known records)",
                measure, shares)

    # multi-field and single-name filters ----------------------------------------------------
    if multi_field:
        publics = {"full_name": public_full_names(), "address": public_addresses()}
        done: dict[bytes, dict[str, pd.Series]] = {}
        for version, schema in (("v2", v2), ("v3", v3)):
            for field in ("full_name", "address"):
                column = enc[version][f"bf_{field}"]
                key = b"".join(b for b in column if b is not None)
                if key not in done:
                    done[key] = attack_multi(enc[version], publics[field],
                                             schema.bloom[field].k,
                                             schema.hardening.salt_for(field), seed)
                salt = "/".join(schema.hardening.salt_for(field) or ("none",))
                for attack, guess in done[key].items():
                    if field == "full_name":
                        shares = [name_share(scorer, guess.to_numpy(), k) for k in each]
                    else:
                        hit = score_address(guess, truth)["street+city"]
                        shares = [hit] * len(sizes)
                    add(f"bf_{field}", version,
                        f"{'component mining' if attack == 'mine' else 'frequency alignment'} "
                        f"per salt group (salt: {salt}; groups >= {MIN_GROUP})",
                        "name (first + last)" if field == "full_name" else "street + city",
                        shares)
            groups = salt_groups(enc[version], ("dob",))
            for field in ("given_name", "family_name"):
                column = enc[version][f"bf_{field}"]
                guess = np.full(n, None, dtype=object)
                # alignment and mining need a filter repeated within its group
                repeated = pd.DataFrame({"g": groups, "f": column}).duplicated(keep=False)
                for _, idx in groups[repeated].groupby(groups[repeated]).groups.items():
                    idx = groups.index[groups == groups.loc[idx[0]]]
                    found = attack_group(column.loc[idx], names[field])
                    for attack in ("align", "mine"):
                        mapped = column.loc[idx].map(found[attack]).to_numpy()
                        empty = np.array([g is None for g in guess[idx]])
                        guess[np.asarray(idx)[empty]] = mapped[empty]
                add(f"bf_{field}", version, "alignment + mining per dob group (salt: dob)",
                    field, [scorer.share(guess, field, k) for k in each])

    if calibrate:
        calibration(truth, secret, seed, rows, sizes)

    print()
    print(f"Re-identified: share of all {n:,} records whose true value the attack's guess "
          f"equals (the known records themselves not counted); columns: records the attacker "
          f"knows whole. Run time {time.perf_counter() - start:.0f} s.")
    header = " | ".join(f"known {k}" for k in sizes)
    print(f"| column | encoding | attack | re-identified | {header} |")
    print("|---|---|---|---|" + "---|" * len(sizes))
    for row in rows:
        cells = " | ".join(f"{s:.2%}" for s in row.shares)
        print(f"| {row.column} | {row.encoding} | {row.attack} | {row.measure} | {cells} |")


def calibration(truth: pd.DataFrame, secret: _AttackSecret, seed: int, rows: list[Row],
                sizes: list[int]) -> None:
    """The two miners on an unsalted ``bf_full_name`` (v1's), and on one with keyed BLIP
    p = 0.1 (docs/encoding.md's candidate), to show what they reach without a salt."""
    public = public_full_names()
    for label, hardening in (
            ("unsalted (v1 structure)", {"applies_to": ["given_name", "family_name"],
                                         "salt": "dob"}),
            ("unsalted + BLIP p=0.1", {"applies_to": ["given_name", "family_name", "full_name"],
                                       "salt": "dob", "salt_by_field": {"full_name": None},
                                       "blip_probability": 0.1})):
        encoded = encode_participants(truth, secret, v1_schema(hardening))
        for tolerant in (False, True):
            guess = attack_multi(encoded, public, 10, None, seed, tolerant=tolerant)["mine"]
            both = score_full_name(guess, truth)["both"]
            rows.append(Row("bf_full_name", label,
                            "noise-tolerant mining" if tolerant else "component mining",
                            "name (first + last)", [both] * len(sizes)))
            print(f"  [calibration {label} tolerant={tolerant}: {both:.2%}]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--known", type=int, nargs="+", default=[5, 20],
                        help="numbers of records the attacker knows whole (0 is always run)")
    parser.add_argument("--skip-multi-field", action="store_true",
                        help="skip bf_full_name / bf_address / bf_given_name / bf_family_name")
    parser.add_argument("--calibrate", action="store_true",
                        help="also run the miners on unsalted bf_full_name, with and without "
                             "BLIP p=0.1 (about 4 minutes more)")
    args = parser.parse_args()
    run(args.population, args.seed, sorted(args.known), not args.skip_multi_field,
        args.calibrate)


if __name__ == "__main__":
    main()
