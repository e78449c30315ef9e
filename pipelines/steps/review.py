"""Clerical review: the list, decisions, packets for partners, samples and accuracy.

Everything here reads and writes the restricted state (`state/state.duckdb`) and, for
`show_pair` only, the partners' raw drops under `landing/` (docs/review.md). What leaves the
hub (a packet for a partner, the accuracy figures for the release) holds record ids of the
partner's own records, comparison names, agreement categories, weights and counts: never a
value, token or filter.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from linkage import accuracy
from linkage.cluster import constraint_conflicts
from linkage.review import category, pair_id, parse_profile, waterfall
from pipelines.state import StateStore, now_utc
from pipelines.steps.link import census_frame, decision_keys
from pipelines.workspace import Workspace, WorkspaceError

DECISIONS = ("match", "distinct", "unsure")
PAIR_ID_RE = re.compile(r"^R[0-9A-F]{12}$")
#: The default review sample (issue 18: 200 labelled pairs).
DEFAULT_SAMPLE_SIZE = 200


class ReviewError(WorkspaceError):
    """A review request that cannot be met (an unknown pair, a contradicting decision...)."""


@dataclass(frozen=True)
class PairRef:
    """Two records under review: the pair id and their record keys (`partner:record id`)."""

    pair_id: str
    record_key_l: str
    record_key_r: str

    @property
    def sides(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """((partner_id, partner_record_id), ...) of the two records."""
        return (_split_key(self.record_key_l), _split_key(self.record_key_r))


def _split_key(key: str) -> tuple[str, str]:
    partner, sep, record = str(key).partition(":")
    if not sep or not partner or not record:
        raise ReviewError(f"'{key}' is not a record key (partner_id:partner_record_id)")
    return partner, record


def reviewer(by: str | None = None) -> str:
    """Who is deciding: `--by`, else the login name."""
    name = (by or "").strip()
    if not name:
        try:
            name = getpass.getuser()
        except Exception:  # no login name (a container): say so rather than guess
            name = "unknown"
    if len(name) > 64 or any(ord(c) < 32 for c in name):
        raise ReviewError("--by must be a name of at most 64 printable characters")
    return name


# -- what the state holds ----------------------------------------------------------------------

def _latest_model(state: StateStore) -> dict[str, Any]:
    model = state.link_model()
    if model is None:
        raise ReviewError("nothing has been linked yet: run `pathlink run` first")
    return model


def _sample_rows(state: StateStore, sample_id: str | None = None) -> tuple[dict, pd.DataFrame]:
    samples = state.samples()
    if samples.empty:
        return {}, pd.DataFrame()
    if sample_id is None:
        meta = samples.iloc[0].to_dict()
    else:
        match = samples[samples["sample_id"] == sample_id]
        if match.empty:
            raise ReviewError(f"no review sample '{sample_id}'; samples: "
                              f"{', '.join(samples['sample_id'])}")
        meta = match.iloc[0].to_dict()
    return meta, state.sample_pairs(meta["sample_id"])


def find_pair(state: StateStore, pair: str, other: str | None = None) -> PairRef:
    """A pair by its id (``R`` + 12 hex digits) or by its two record keys."""
    if other is not None:
        a, b = sorted((pair, other))
        for key in (a, b):
            _split_key(key)
        if a == b:
            raise ReviewError("a pair needs two different records")
        return PairRef(pair_id(a, b), a, b)
    text = pair.strip().upper()
    if not PAIR_ID_RE.match(text):
        raise ReviewError(f"'{pair}' is not a pair id (R and 12 hex digits, as `pathlink review "
                          "list` shows) nor two record keys")
    for frame in (state.review_pairs(pair_ids=[text]),
                  state.con.execute("SELECT DISTINCT pair_id, record_key_l, record_key_r FROM "
                                    "review_sample_pairs WHERE pair_id = ?", [text]).df()):
        if len(frame):
            row = frame.iloc[0]
            return PairRef(text, row["record_key_l"], row["record_key_r"])
    decided = decision_keys(state.decisions(in_force=False))
    decided = decided[decided["pair_id"] == text] if len(decided) else decided
    if len(decided):
        row = decided.iloc[0]
        return PairRef(text, row["record_key_l"], row["record_key_r"])
    raise ReviewError(f"no pair '{text}' in the latest link, a review sample or a decision")


def _decisions_by_pair(state: StateStore) -> dict[str, dict[str, Any]]:
    frame = state.decisions()
    return {row["pair_id"]: row for row in frame.to_dict(orient="records")}


def _explain(snapshot: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    return waterfall(snapshot, parse_profile(row["profile"]),
                     float(row.get("frequency_adjustment") or 0.0))


def review_list(ws: Workspace, *, record: str | None = None, sample: bool = False,
                decided: bool = False) -> dict[str, Any]:
    """The pairs to review with their waterfalls.

    Default: the possible matches of the latest link without a decision in force. ``record``:
    every scored pair (match or possible) and pooled pair of that record. ``sample``: the
    latest review sample's pairs without a decision. ``decided`` keeps decided pairs too.
    """
    with StateStore(ws.state_db) as state:
        model = _latest_model(state)
        snapshot = json.loads(model["model"])
        done = _decisions_by_pair(state)
        meta: dict = {}
        if sample:
            meta, frame = _sample_rows(state)
            if frame.empty:
                raise ReviewError("no review sample yet: draw one with `pathlink review sample`")
            if meta["run_id"] != model["run_id"]:
                snapshot = json.loads((state.link_model(meta["run_id"]) or model)["model"])
        elif record is not None:
            _split_key(record)
            frame = state.review_pairs(record_key=record)
        else:
            frame = state.review_pairs()
            frame = frame[frame["match_class"] == "possible"]
    pairs = []
    for row in frame.to_dict(orient="records"):
        decision = done.get(row["pair_id"])
        if decision is not None and decision["decision"] != "unsure" and not decided \
                and record is None:
            continue
        pairs.append({
            "pair_id": row["pair_id"], "record_key_l": row["record_key_l"],
            "record_key_r": row["record_key_r"], "match_weight": float(row["match_weight"]),
            "match_class": row["match_class"], "linked": bool(row["linked"]),
            "stratum": int(row["stratum"]) if "stratum" in row else None,
            "decision": None if decision is None else decision["decision"],
            "decided_by": None if decision is None else decision["decided_by"],
            "waterfall": _explain(snapshot, row)})
    return {"run_id": model["run_id"], "period": model["period"],
            "sample_id": meta.get("sample_id"), "pairs": pairs,
            "thresholds": {"match": snapshot["match_weight_threshold"],
                           "possible": snapshot["possible_weight_threshold"]}}


def pair_detail(ws: Workspace, pair: str, other: str | None = None) -> dict[str, Any]:
    """One pair: its keys, its latest scoring (if any) with the waterfall, its decisions."""
    with StateStore(ws.state_db) as state:
        ref = find_pair(state, pair, other)
        model = state.link_model()
        rows = state.review_pairs(pair_ids=[ref.pair_id])
        if rows.empty:
            rows = state.con.execute(
                "SELECT * FROM review_sample_pairs WHERE pair_id = ? LIMIT 1",
                [ref.pair_id]).df()
        history = state.decisions(in_force=False)
    history = history[history["pair_id"] == ref.pair_id] if len(history) else history
    scored = None
    if len(rows) and model is not None:
        row = rows.iloc[0].to_dict()
        scored = {"match_weight": float(row["match_weight"]),
                  "match_class": row["match_class"], "linked": bool(row["linked"]),
                  "waterfall": _explain(json.loads(model["model"]), row)}
    return {"pair": ref, "scored": scored,
            "decisions": [{k: row[k] for k in ("decision_id", "decision", "decided_by",
                                               "decided_at", "source")}
                          for row in history.to_dict(orient="records")]}


# -- decisions ---------------------------------------------------------------------------------

def _next_ids(state: StateStore, count: int) -> list[str]:
    row = state.con.execute(
        "SELECT max(CAST(substr(decision_id, 2) AS BIGINT)) FROM review_decisions "
        "WHERE regexp_matches(decision_id, '^D[0-9]+$')").fetchall()[0][0]
    start = int(row or 0) + 1
    return [f"D{n:05d}" for n in range(start, start + count)]


def _check_consistent(state: StateStore, new: pd.DataFrame) -> None:
    """Refuse decisions that contradict each other or those in force (a chain of matches
    joining two records decided distinct), naming the decisions involved."""
    current = decision_keys(state.decisions())
    if len(current):
        current = current[~current["pair_id"].isin(set(new["pair_id"]))]
    merged = pd.concat([current, new], ignore_index=True) if len(current) else new
    merged = merged.drop_duplicates("pair_id", keep="last")
    must = merged[merged["decision"] == "match"]
    cannot = merged[merged["decision"] == "distinct"]
    conflicts = constraint_conflicts(must[["record_key_l", "record_key_r"]],
                                     cannot[["record_key_l", "record_key_r"]])
    if conflicts:
        a, b = conflicts[0]
        which = cannot[(cannot["record_key_l"] == a) & (cannot["record_key_r"] == b)]
        named = which["decision_id"].dropna().tolist() if "decision_id" in which else []
        raise ReviewError(
            f"contradicting decisions: {a} and {b} are decided distinct"
            f"{' (' + ', '.join(named) + ')' if named else ''} but a chain of match decisions "
            "joins them; change one of them first (`pathlink review show` lists a pair's "
            "decisions)")


def record_decisions(ws: Workspace, rows: list[dict[str, Any]], *, source: str
                     ) -> pd.DataFrame:
    """Store decisions (``pair``: a PairRef, ``decision``, ``decided_by``) in one
    transaction, after checking them; returns what was stored."""
    with StateStore(ws.state_db) as state:
        model = state.link_model()
        weights: dict[str, float] = {}
        ids = [r["pair"].pair_id for r in rows]
        if ids:
            scored = state.review_pairs(pair_ids=ids)
            weights = dict(zip(scored["pair_id"], scored["match_weight"], strict=True))
        frame = pd.DataFrame([{
            "pair_id": r["pair"].pair_id,
            "partner_id_l": r["pair"].sides[0][0], "partner_record_id_l": r["pair"].sides[0][1],
            "partner_id_r": r["pair"].sides[1][0], "partner_record_id_r": r["pair"].sides[1][1],
            "decision": r["decision"], "decided_by": r["decided_by"],
        } for r in rows])
        if frame.empty:
            return frame
        bad = sorted(set(frame["decision"]) - set(DECISIONS))
        if bad:
            raise ReviewError(f"unknown decision '{bad[0]}'; use match, distinct or unsure")
        _check_consistent(state, decision_keys(frame))
        frame["decision_id"] = _next_ids(state, len(frame))
        frame["decided_at"] = now_utc()
        frame["source"] = source
        frame["match_weight"] = frame["pair_id"].map(weights).astype(float)
        frame["run_id"] = None if model is None else model["run_id"]
        frame = frame[["decision_id", "pair_id", "partner_id_l", "partner_record_id_l",
                       "partner_id_r", "partner_record_id_r", "decision", "decided_by",
                       "decided_at", "source", "match_weight", "run_id"]]
        state.add_decisions(frame)
    return frame


def decide(ws: Workspace, pair: str, decision: str, *, other: str | None = None,
           by: str | None = None) -> dict[str, Any]:
    """Record one decision on a pair (by id, or by two record keys)."""
    decision = decision.strip().lower()
    if decision not in DECISIONS:
        raise ReviewError(f"unknown decision '{decision}'; use match, distinct or unsure")
    with StateStore(ws.state_db) as state:
        ref = find_pair(state, pair, other)
    stored = record_decisions(ws, [{"pair": ref, "decision": decision,
                                    "decided_by": reviewer(by)}], source="command")
    row = stored.iloc[0]
    return {"decision_id": row["decision_id"], "pair_id": ref.pair_id,
            "record_key_l": ref.record_key_l, "record_key_r": ref.record_key_r,
            "decision": decision, "decided_by": row["decided_by"]}


IMPORT_COLUMNS = ("pair_id", "partner_id_l", "partner_record_id_l", "partner_id_r",
                  "partner_record_id_r", "decision", "decided_by")


def import_decisions(ws: Workspace, path: Path, *, by: str | None = None) -> dict[str, Any]:
    """Import decisions from a CSV: ``pair_id`` or the two records (``partner_id_l,
    partner_record_id_l, partner_id_r, partner_record_id_r``), ``decision`` and optionally
    ``decided_by`` (default ``by``). A returned review packet has these columns. Rows with an
    empty decision are skipped; any bad row refuses the whole file, naming its line and field.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ReviewError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ReviewError(f"{Path(path).name} is not UTF-8 text (save it as CSV UTF-8)") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "decision" not in header:
        raise ReviewError(f"{Path(path).name}: no 'decision' column (expected "
                          f"{', '.join(IMPORT_COLUMNS)})")
    by_records = {"partner_id_l", "partner_record_id_l", "partner_id_r",
                  "partner_record_id_r"} <= set(header)
    if "pair_id" not in header and not by_records:
        raise ReviewError(f"{Path(path).name}: needs a 'pair_id' column or the two records' "
                          "partner_id_l, partner_record_id_l, partner_id_r, partner_record_id_r")
    default_by = reviewer(by)
    rows, skipped = [], 0
    with StateStore(ws.state_db) as state:
        for line, raw in enumerate(reader, start=2):
            item = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            decision = item.get("decision", "").lower()
            if not decision:
                skipped += 1
                continue
            if decision not in DECISIONS:
                raise ReviewError(f"{Path(path).name} line {line}, field decision: not one of "
                                  "match, distinct, unsure")
            try:
                if by_records and item.get("partner_id_l"):
                    ref = find_pair(state, f"{item['partner_id_l']}:{item['partner_record_id_l']}",
                                    f"{item['partner_id_r']}:{item['partner_record_id_r']}")
                else:
                    ref = find_pair(state, item.get("pair_id", ""))
            except ReviewError as exc:
                raise ReviewError(f"{Path(path).name} line {line}, field "
                                  f"{'pair_id' if not by_records else 'partner_id_l'}: {exc}"
                                  ) from None
            who = item.get("decided_by") or default_by
            rows.append({"pair": ref, "decision": decision, "decided_by": reviewer(who)})
    stored = record_decisions(ws, rows, source=f"import:{Path(path).name}")
    return {"stored": len(stored), "skipped_empty": skipped,
            "by_decision": stored["decision"].value_counts().to_dict() if len(stored) else {}}


# -- packets for partners that encode on their own machine -------------------------------------

def _encoded_sides(state: StateStore, keys: list[str]) -> set[str]:
    """Record keys whose latest version came from a partner-side encoded drop."""
    sources = state.record_sources(keys)
    encoded = sources["rel_path"].fillna("").str.contains(".encoded.", regex=False)
    return set(sources.loc[encoded, "record_key"])


def write_packet(ws: Workspace, partner: str, out: Path, *, every: bool = False
                 ) -> dict[str, Any]:
    """A CSV for one partner: its own record ids in the pending pairs (possible matches and
    sample pairs without a decision) where either record was encoded on a partner's machine
    (``every``: all its pending pairs), with the other partner's id and the pair's agreement
    profile: per comparison agree / close / disagree / missing, and the weight. Never a value,
    token or filter, and never another partner's record id (``your_other_record_id`` is filled
    only when both records are the partner's own). The partner fills in
    ``decision`` (match, distinct or unsure) and ``decided_by`` and sends it back for
    `pathlink review import`."""
    ws.partner(partner)
    with StateStore(ws.state_db) as state:
        model = _latest_model(state)
        snapshot = json.loads(model["model"])
        frame = state.review_pairs()
        frame = frame[frame["match_class"] == "possible"]
        _, sample = _sample_rows(state)
        if len(sample):
            frame = pd.concat([frame, sample[~sample["pair_id"].isin(set(frame["pair_id"]))]],
                              ignore_index=True)
        done = _decisions_by_pair(state)
        frame = frame[[done.get(p, {}).get("decision") in (None, "unsure")
                       for p in frame["pair_id"]]]
        mine = frame[frame["record_key_l"].str.startswith(partner + ":")
                     | frame["record_key_r"].str.startswith(partner + ":")]
        encoded = _encoded_sides(state, sorted(set(mine["record_key_l"])
                                               | set(mine["record_key_r"])))
    comparisons = [c["name"] for c in snapshot["comparisons"]]
    rows = []
    for row in mine.to_dict(orient="records"):
        if not every and row["record_key_l"] not in encoded \
                and row["record_key_r"] not in encoded:
            continue
        own, other = (row["record_key_l"], row["record_key_r"]) \
            if row["record_key_l"].startswith(partner + ":") \
            else (row["record_key_r"], row["record_key_l"])
        levels = parse_profile(row["profile"])
        profile = {f"agreement_{c['name']}": category(levels.get(c["feature"], -1),
                                                      int(c["levels"]))
                   for c in snapshot["comparisons"]}
        other_partner, other_id = _split_key(other)
        rows.append({"pair_id": row["pair_id"], "your_record_id": _split_key(own)[1],
                     "other_partner": other_partner,
                     "match_weight": round(float(row["match_weight"]), 2),
                     # two records of the partner's own (a possible duplicate): both are its own
                     "your_other_record_id": other_id if other_partner == partner else "",
                     **profile, "decision": "", "decided_by": ""})
    columns = ["pair_id", "your_record_id", "other_partner", "match_weight",
               "your_other_record_id", *(f"agreement_{c}" for c in comparisons), "decision",
               "decided_by"]
    packet = pd.DataFrame(rows, columns=columns).sort_values(
        ["match_weight", "pair_id"], ascending=[False, True])
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        packet.to_csv(out, index=False, lineterminator="\n")
    except OSError as exc:
        raise ReviewError(f"cannot write {out}: {exc.strerror}") from None
    return {"path": str(out), "pairs": len(packet), "partner": partner,
            "run_id": model["run_id"], "period": model["period"]}


# -- samples and accuracy ----------------------------------------------------------------------

def draw_sample(ws: Workspace, *, size: int = DEFAULT_SAMPLE_SIZE, seed: int | None = None,
                by: str | None = None) -> dict[str, Any]:
    """Draw a stratified random sample of the latest link's candidate pairs for review.

    Strata and their pair counts come from the link's census; the pairs from the stored
    matches and possible matches (every one) and the pool of non-matches (a uniform sample of
    the strata below the possible-match threshold). ``accuracy.allocate`` spreads ``size``
    over the strata; each stratum's pairs are drawn uniformly without replacement.
    """
    if size < 1:
        raise ReviewError("--size must be at least 1")
    who = reviewer(by)
    seed = int(np.random.default_rng().integers(2 ** 31)) if seed is None else int(seed)
    rng = np.random.default_rng(seed)
    with StateStore(ws.state_db) as state:
        model = _latest_model(state)
        strata = census_frame(model["strata"])
        pairs = state.review_pairs()
        snapshot = json.loads(model["model"])
        edges = tuple(strata.loc[strata["lo"] > -np.inf, "lo"])
        pairs = pairs.assign(stratum=accuracy.stratum_of(pairs["match_weight"].to_numpy(),
                                                         edges))
        sampled = strata[strata["lo"] > -np.inf]
        available = pairs.groupby("stratum").size().reindex(sampled["stratum"], fill_value=0)
        # below the possible-match threshold only the pool is at hand
        wanted = accuracy.allocate(sampled["pairs"].to_numpy(), size)
        take = accuracy.allocate(sampled["pairs"].to_numpy(), size,
                                 capacity=available.to_numpy())
        chosen = []
        for stratum, k in zip(sampled["stratum"], take, strict=True):
            if k:
                members = pairs[pairs["stratum"] == stratum]
                chosen.append(members.iloc[np.sort(rng.choice(len(members), size=int(k),
                                                              replace=False))])
        picked = pd.concat(chosen, ignore_index=True) if chosen else pairs.iloc[:0]
        count = state.con.execute("SELECT count(*) FROM review_samples").fetchall()[0][0]
        sample_id = f"S{int(count) + 1:03d}"
        design = {"thresholds": {"match": snapshot["match_weight_threshold"],
                                 "possible": snapshot["possible_weight_threshold"]},
                  "strata": [{"stratum": int(s), "lo": None if not np.isfinite(lo) else lo,
                              "hi": None if not np.isfinite(hi) else hi, "pairs": int(n),
                              "expected_matches": float(e), "allocated": int(w),
                              "drawn": int(t)}
                             for s, lo, hi, n, e, w, t in zip(
                                 strata["stratum"], strata["lo"], strata["hi"],
                                 strata["pairs"], strata["expected_matches"],
                                 [0, *wanted], [0, *take], strict=True)]}
        state.add_sample({"sample_id": sample_id, "run_id": model["run_id"],
                          "period": model["period"], "drawn_by": who, "seed": seed,
                          "size": len(picked), "design": json.dumps(design)},
                         picked[["pair_id", "record_key_l", "record_key_r", "stratum",
                                 "match_weight", "match_class", "frequency_adjustment",
                                 "profile", "linked"]])
    return {"sample_id": sample_id, "run_id": model["run_id"], "period": model["period"],
            "size": len(picked), "requested": size, "seed": seed,
            "by_class": picked["match_class"].value_counts().to_dict(),
            "strata": design["strata"]}


def _design_strata(design: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(design["strata"])
    frame["lo"] = frame["lo"].astype(float).fillna(-np.inf)
    frame["hi"] = frame["hi"].astype(float).fillna(np.inf)
    return frame


def accuracy_report(ws: Workspace, *, sample_id: str | None = None,
                    table: bool = False) -> dict[str, Any] | None:
    """Precision and recall with intervals from a review sample's decided pairs (the latest
    sample by default), or None when no sample was drawn. ``table`` adds the expected precision
    and recall at each stratum edge (the threshold chart)."""
    with StateStore(ws.state_db) as state:
        meta, pairs = _sample_rows(state, sample_id)
        if not meta:
            return None
        done = _decisions_by_pair(state)
    design = json.loads(meta["design"])
    strata = _design_strata(design)
    decisions = pairs["pair_id"].map(lambda p: done.get(p, {}).get("decision"))
    labelled = pairs[decisions.isin(["match", "distinct"])]
    labels = pd.DataFrame({"stratum": labelled["stratum"].astype(int),
                           "is_match": decisions[labelled.index] == "match",
                           "linked": labelled["linked"].astype(bool)})
    result = accuracy.estimate(strata, labels, match_threshold=design["thresholds"]["match"],
                               possible_threshold=design["thresholds"]["possible"],
                               seed=int(meta["seed"]))
    report = {"sample_id": meta["sample_id"], "run_id": meta["run_id"],
              "period": meta["period"], "drawn_at": str(meta["drawn_at"])[:19],
              "drawn_by": meta["drawn_by"], "sample_size": int(meta["size"]),
              "labelled": len(labels),
              "unsure": int((decisions == "unsure").sum()),
              "thresholds": design["thresholds"], **result}
    if table:
        report["threshold_table"] = accuracy.threshold_table(
            strata, labels, seed=int(meta["seed"])).to_dict(orient="records")
    return report


def review_status(ws: Workspace) -> dict[str, Any]:
    """Counts for `pathlink status`: pending possible matches, decisions, the accuracy."""
    with StateStore(ws.state_db) as state:
        model = state.link_model()
        if model is None:
            return {}
        pairs = state.review_pairs()
        done = state.decisions()
    possible = pairs[pairs["match_class"] == "possible"]
    decided = set(done.loc[done["decision"] != "unsure", "pair_id"]) if len(done) else set()
    out: dict[str, Any] = {
        "run_id": model["run_id"], "period": model["period"],
        "possible_pairs": len(possible),
        "pending_pairs": int((~possible["pair_id"].isin(decided)).sum()),
        "decisions": {d: int((done["decision"] == d).sum()) for d in DECISIONS}
        if len(done) else dict.fromkeys(DECISIONS, 0)}
    report = accuracy_report(ws)
    if report is not None:
        out["accuracy"] = {k: report[k] for k in ("sample_id", "period", "sample_size",
                                                  "labelled", "figures", "tail")}
    return out


def report_accuracy(ws: Workspace) -> dict[str, Any] | None:
    """The latest review sample's estimate for the report's methods section: the figures,
    the tail, how many pairs were sampled and decided, the period; None without a sample or
    a state. Counts and estimates only."""
    if not ws.state_db.exists():
        return None
    report = accuracy_report(ws)
    if report is None:
        return None
    return {k: report[k] for k in ("sample_id", "period", "sample_size", "labelled",
                                   "figures", "tail")}
