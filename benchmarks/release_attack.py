"""An outsider's re-identification attack on the release tiers, scored with the synthetic truth.

The outsider knows, for each synthetic person, the birth year, sex and ZIP3 (from the person
truth), the partners that served them and the months they entered a program (from the truth and
the partners' enrollment drops). They look for the person in what they were given:

* before (the old layout, where published/ held person-level tables): ``person``,
  ``participation`` and ``enrollment`` as they are now in the analyst's warehouse
  (state/warehouse.duckdb): a person is singled out when exactly one pseudonymous person has
  those facts, and it is the right one;
* published/ now: the relations it holds, and whether any is person-level;
* a research extract: the facts generalized as the extract was (its risk.json levels), a
  ``*`` in the extract matching anything; singled out when exactly one row is compatible and
  it is the person's (research ids mapped back through the restricted crosswalk).

Usage (a demo workspace: `pathlink demo --dir DIR`; adds a research agreement `attack-test`
covering every partner to its config if there is none, and makes the extract):

    .venv/bin/python benchmarks/release_attack.py --workspace demo-workspace
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tomllib
from pathlib import Path

import duckdb
import pandas as pd
import tomli_w

from pipelines.warehouse import research, tiers
from pipelines.workspace import load_workspace

AGREEMENT = "attack-test"


def knowledge(synthetic: Path, partners: list[str]) -> pd.DataFrame:
    """What the outsider knows per true person served by ``partners``: birth_year, sex, zip3,
    partners ('+'-joined, sorted), entry_months (sorted list), first_entry."""
    persons = pd.read_csv(synthetic / "truth" / "persons_truth.csv", dtype=str)
    records = pd.read_csv(synthetic / "truth" / "participants_truth.csv", dtype=str)
    records = records[records["partner_id"].isin(partners)]
    served = (records.drop_duplicates(["true_person_id", "partner_id"])
              .groupby("true_person_id")["partner_id"]
              .agg(lambda s: "+".join(sorted(s))).rename("partners"))
    owner = records.drop_duplicates(["partner_id", "partner_record_id"]).set_index(
        ["partner_id", "partner_record_id"])["true_person_id"]
    entries = []
    for partner in partners:
        for path in sorted((synthetic / "landing" / partner).glob("*/enrollments.csv")):
            frame = pd.read_csv(path, dtype=str)
            keys = list(zip([partner] * len(frame), frame["partner_record_id"], strict=True))
            frame["true_person_id"] = [owner.get(k) for k in keys]
            frame["month"] = frame["entry_date"].str[:7]
            entries.append(frame[["true_person_id", "month"]].dropna())
    months = (pd.concat(entries).drop_duplicates().groupby("true_person_id")["month"]
              .agg(lambda s: sorted(s)).rename("entry_months")) if entries else pd.Series()
    out = persons.set_index("true_person_id").join(served, how="inner").join(months)
    out["birth_year"] = out["date_of_birth"].str[:4]
    out["zip3"] = out["zip"].str[:3]
    out["entry_months"] = out["entry_months"].map(lambda v: v if isinstance(v, list) else [])
    out["first_entry"] = out["entry_months"].map(lambda v: v[0] if v else research.NONE)
    return out[["birth_year", "sex", "zip3", "partners", "entry_months", "first_entry"]]


def true_person_of(state_db: Path, synthetic: Path) -> pd.Series:
    """person_id -> the true person most of its records belong to (restricted crosswalk)."""
    records = pd.read_csv(synthetic / "truth" / "participants_truth.csv", dtype=str)
    records["record_key"] = records["partner_id"] + ":" + records["partner_record_id"]
    truth = records.drop_duplicates("record_key").set_index("record_key")["true_person_id"]
    con = duckdb.connect(str(state_db), read_only=True)
    try:
        crosswalk = con.execute("SELECT record_key, person_id FROM crosswalk").df()
    finally:
        con.close()
    crosswalk["true_person_id"] = crosswalk["record_key"].map(truth)
    return (crosswalk.dropna().groupby("person_id")["true_person_id"]
            .agg(lambda s: s.value_counts().index[0]))


def attack_person_level(warehouse_db: Path, known: pd.DataFrame, truth_of: pd.Series,
                        partners: list[str], *, with_entries: bool) -> dict:
    """The old published layout: exact facts against person, participation, enrollment."""
    scope = ", ".join(f"'{p}'" for p in partners)
    con = duckdb.connect(str(warehouse_db), read_only=True)
    try:
        people = con.execute(f"""
            SELECT p.person_id, p.birth_year::VARCHAR AS birth_year, p.sex, p.zip3,
                   (SELECT string_agg(DISTINCT partner_id, '+' ORDER BY partner_id)
                    FROM participation AS pa WHERE pa.person_id = p.person_id
                      AND pa.partner_id IN ({scope})) AS partners,
                   coalesce((SELECT list(DISTINCT entry_month ORDER BY entry_month)
                    FROM enrollment AS e WHERE e.person_id = p.person_id
                      AND e.partner_id IN ({scope})), []) AS entry_months
            FROM person AS p""").df()
    finally:
        con.close()
    people = people[people["partners"].notna()]
    people["entries"] = people["entry_months"].map(lambda v: "|".join(v))
    columns = ["birth_year", "sex", "zip3", "partners"] + (["entries"] if with_entries else [])
    counts = people.groupby(columns, dropna=False)["person_id"].agg(["count", "first"])
    target = known.assign(entries=known["entry_months"].map(lambda v: "|".join(v)))
    singled = unique = 0
    for true_id, row in target.iterrows():
        key = tuple(row[c] for c in columns)
        if key in counts.index and counts.loc[key, "count"] == 1:
            unique += 1
            singled += int(truth_of.get(counts.loc[key, "first"]) == true_id)
    share_unique = float((people.groupby(columns, dropna=False)["person_id"]
                          .transform("size") == 1).mean())
    return {"persons": len(people), "targets": len(target), "share_unique": share_unique,
            "singled_out": singled, "singling_out_rate": singled / max(1, len(target))}


def attack_extract(extract: pd.DataFrame, levels: dict[str, int], known: pd.DataFrame,
                   truth_of_research: pd.Series, qis: list[str]) -> dict:
    """The outsider's facts, generalized like the extract, against the extract's rows."""
    facts = pd.DataFrame({
        "birth_year": known["birth_year"], "sex": known["sex"], "zip3": known["zip3"],
        "partners": known["partners"], "entry_period": known["first_entry"],
        "exit_period": research.STAR, "program": research.STAR,  # not known to the outsider
        "funding_stream": research.STAR,
    }, index=known.index)
    generalized = facts.copy()
    for qi in qis:
        if facts[qi].eq(research.STAR).all():
            continue
        generalized[qi] = research.generalize_column(facts, qi, levels.get(qi, 0))
    rows = extract[qis].astype(str)
    singled = 0
    smallest = len(rows)
    for true_id, fact in generalized.iterrows():
        compatible = pd.Series(True, index=rows.index)
        for qi in qis:
            value = str(fact[qi])
            if value == research.STAR:
                continue
            compatible &= (rows[qi] == value) | (rows[qi] == research.STAR)
        n = int(compatible.sum())
        if n:
            smallest = min(smallest, n)
        if n == 1:
            research_id = extract.loc[compatible[compatible].index[0], "research_id"]
            singled += int(truth_of_research.get(research_id) == true_id)
    classes = research.class_sizes(extract, qis)
    return {"persons": len(extract), "targets": len(generalized),
            "min_class": int(classes.min()) if len(classes) else 0,
            "smallest_candidate_set": smallest, "singled_out": singled,
            "singling_out_rate": singled / max(1, len(generalized))}


def ensure_agreement(root: Path) -> None:
    raw = tomllib.loads((root / "pathlink.toml").read_text())
    if AGREEMENT in raw.get("agreements", {}):
        return
    raw.setdefault("agreements", {})[AGREEMENT] = {
        "partners": ["*"], "tier": "research", "purpose": "re-identification attack test",
        "expires": dt.date.today() + dt.timedelta(days=30), "grantee": "release tests"}
    (root / "pathlink.toml").write_text(tomli_w.dumps(raw))


def run(root: Path, synthetic: Path | None = None) -> dict:
    """The attack on workspace ``root`` whose drops and truth are in ``synthetic`` (default
    ``root/synthetic``, as `pathlink demo` leaves them)."""
    from pipelines.steps import access

    ensure_agreement(root)
    ws = load_workspace(root)
    synthetic = synthetic or root / "synthetic"
    wage = {"ct_dol"}
    partners = sorted(p for p in ws.partners if p not in wage)
    known = knowledge(synthetic, partners)
    truth_of = true_person_of(ws.state_db, synthetic)
    before4 = attack_person_level(ws.warehouse_db, known, truth_of, partners,
                                  with_entries=False)
    before5 = attack_person_level(ws.warehouse_db, known, truth_of, partners,
                                  with_entries=True)
    con = duckdb.connect(str(ws.published_db), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()]
        person_level = tiers.person_level_columns(con)
    finally:
        con.close()
    made = access.extract(ws, AGREEMENT)
    extract = pd.read_parquet(made.data)
    meta = json.loads(made.risk_file.read_text())
    salt = research.agreement_salt(ws.state_dir, AGREEMENT)
    ids = pd.Series(truth_of.index, index=truth_of.index)
    truth_of_research = pd.Series(truth_of.to_numpy(),
                                  index=research.research_ids(ids, salt).to_numpy())
    qis = list(ws.release.quasi_identifiers)
    after = attack_extract(extract, meta["risk"]["levels"], known, truth_of_research, qis)
    return {"before_4_facts": before4, "extract_folder": made.folder,
            "before_with_entry_months": before5,
            "published_relations": len(names),
            "published_non_released": [n for n in names if not n.startswith("released_")],
            "published_person_level": person_level, "extract": after,
            "extract_risk": meta["risk"], "extract_risk_before": meta["risk_before_generalization"],
            "k": ws.release.k}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", type=Path, default=Path("demo-workspace"))
    args = parser.parse_args()
    out = run(args.workspace.resolve())
    b4, b5, ex = out["before_4_facts"], out["before_with_entry_months"], out["extract"]
    print(f"workspace {args.workspace}: {b5['persons']} pseudonymous persons, "
          f"{b5['targets']} true persons known to the outsider")
    print("BEFORE (person-level tables as the old published file held them)")
    print(f"  unique on birth year, sex, ZIP3, partners:             {b4['share_unique']:.1%}")
    print(f"  ... and entry months:                                   {b5['share_unique']:.1%}")
    print(f"  singled out (right person) knowing the four facts:     "
          f"{b4['singling_out_rate']:.1%} ({b4['singled_out']})")
    print(f"  singled out knowing the four facts and entry months:   "
          f"{b5['singling_out_rate']:.1%} ({b5['singled_out']})")
    print("AFTER")
    print(f"  published/: {out['published_relations']} relations, not released_*: "
          f"{out['published_non_released'] or 'none'}, person-level columns: "
          f"{out['published_person_level'] or 'none'}")
    print(f"  research extract: {ex['persons']} persons, smallest class over the declared "
          f"quasi-identifiers {ex['min_class']} (k = {out['k']})")
    print(f"  smallest set of rows an outsider's facts match: {ex['smallest_candidate_set']}")
    print(f"  singled out (right person) knowing birth year, sex, ZIP3, partners, entry "
          f"periods: {ex['singling_out_rate']:.2%} ({ex['singled_out']})")
    risk, raw = out["extract_risk"], out["extract_risk_before"]
    print(f"  extract risk stored with it: share unique {risk['share_unique']:.2%} "
          f"(ungeneralized {raw['share_unique']:.1%}), share under k "
          f"{risk['share_under_k']:.2%}, singling-out rate {risk['singling_out_rate']:.2%}, "
          f"cells suppressed {risk['cells_suppressed']}, persons dropped "
          f"{risk['persons_dropped']}, levels {risk['levels']}")
    ok = (not out["published_non_released"] and not out["published_person_level"]
          and ex["min_class"] >= out["k"] and ex["singling_out_rate"] <= 0.01)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
