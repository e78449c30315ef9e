"""What a scored pair's weight is made of, for clerical review: never a value, token or filter.

``waterfall(snapshot, gammas)`` rebuilds a pair's match weight from the model snapshot
(``classify.FellegiSunter.snapshot``) and the pair's gamma levels, as Splink's waterfall charts
do: the prior, then what each comparison contributed (its log2 Bayes factor at the pair's
level) with the level's plain meaning and a category (``agree``: the top level, ``close``: a
level between, ``disagree``: level 0, ``missing``: either side has nothing to compare), then
the weight caps and the frequency adjustment. The rows add up to the stored weight.

``pair_id`` names a pair of records by a hash of their record keys, the same in every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CATEGORIES",
    "category",
    "level_meaning",
    "pair_id",
    "parse_profile",
    "profile_string",
    "waterfall",
]

CATEGORIES = ("agree", "close", "disagree", "missing")


def pair_id(key_a: str, key_b: str) -> str:
    """``R`` + 12 hex digits of SHA-256 over the two record keys in sorted order (stable
    across runs; the keys are partner record ids, not personal values)."""
    left, right = sorted((str(key_a), str(key_b)))
    digest = hashlib.sha256(f"{left}\x1f{right}".encode()).hexdigest()
    return "R" + digest[:12].upper()


def category(gamma: int, levels: int) -> str:
    """``agree`` / ``close`` / ``disagree`` / ``missing`` of a gamma level."""
    gamma = int(gamma)
    if gamma < 0:
        return "missing"
    if gamma >= levels - 1:
        return "agree"
    return "disagree" if gamma == 0 else "close"


def level_meaning(comparison: Mapping[str, Any], gamma: int) -> str:
    """What a level means, in words (thresholds and column names, never values)."""
    gamma = int(gamma)
    kind, levels = comparison["kind"], int(comparison["levels"])
    if gamma < 0:
        return "not compared (missing on a side, or a gate not met)"
    thresholds = comparison.get("thresholds") or []
    if kind == "dice":
        if gamma == 0:
            return f"similarity below {thresholds[-1]:g}" if thresholds else "different"
        return f"similarity at least {thresholds[len(thresholds) - gamma]:g}"
    if kind == "year_diff":
        if gamma == 0:
            return f"more than {thresholds[-1]:g} years apart" if thresholds else "different"
        limit = thresholds[len(thresholds) - gamma]
        return "equal" if limit == 0 else f"at most {limit:g} year{'s' if limit != 1 else ''}"
    if kind == "exact_levels":
        columns = comparison.get("columns") or []
        if gamma == 0:
            return "no level agrees"
        index = levels - 1 - gamma
        return f"agrees on {columns[index]}" if 0 <= index < len(columns) else f"level {gamma}"
    return "equal" if gamma >= 1 else "different"


def profile_string(features: list[str], gammas: list[int] | tuple[int, ...]) -> str:
    """The stored form of a pair's gammas: ``gamma_<name>=level;...``."""
    return ";".join(f"{f}={int(g)}" for f, g in zip(features, gammas, strict=True))


def parse_profile(profile: str) -> dict[str, int]:
    """``{feature: level}`` from :func:`profile_string` (extra ``key=value`` parts ignored)."""
    out: dict[str, int] = {}
    for part in str(profile or "").split(";"):
        name, _, value = part.partition("=")
        if name.startswith("gamma_") and value.lstrip("-").isdigit():
            out[name] = int(value)
    return out


def waterfall(snapshot: Mapping[str, Any], gammas: Mapping[str, int],
              frequency_adjustment: float = 0.0) -> dict[str, Any]:
    """A pair's weight, step by step.

    Args:
        snapshot: ``classify.FellegiSunter.snapshot()`` of the run that scored the pair.
        gammas: ``{gamma_<name>: level}`` (a missing feature counts as -1).
        frequency_adjustment: The pair's frequency adjustment (log2 bits, <= 0).

    Returns:
        ``{"steps": [...], "total": weight, "counts": {category: n}}``; each step is
        ``{"step", "category", "level", "meaning", "bits"}`` (``step``: ``prior``, a
        comparison name, ``cap``, ``frequency``).
    """
    steps: list[dict[str, Any]] = [{"step": "prior", "category": "", "level": None,
                                    "meaning": "log2 odds that two candidate records match, "
                                               "before any comparison",
                                    "bits": float(snapshot["prior_log2_odds"])}]
    bits_of: dict[str, float] = {}
    counts = dict.fromkeys(CATEGORIES, 0)
    for comp in snapshot["comparisons"]:
        gamma = int(gammas.get(comp["feature"], -1))
        bits = 0.0 if gamma < 0 else float(comp["bits"][gamma])
        what = category(gamma, int(comp["levels"]))
        counts[what] += 1
        bits_of[comp["name"]] = bits
        steps.append({"step": comp["name"], "category": what, "level": gamma,
                      "meaning": level_meaning(comp, gamma), "bits": bits})
    for cap in snapshot.get("caps", []):
        members = [name for name in cap["comparisons"] if name in bits_of]
        excess = sum(bits_of[name] for name in members) - float(cap["max_weight"])
        if excess > 0:
            steps.append({"step": "cap", "category": "", "level": None,
                          "meaning": f"{' + '.join(members)} count at most "
                                     f"{float(cap['max_weight']):g} bits together",
                          "bits": -excess})
    if frequency_adjustment:
        steps.append({"step": "frequency", "category": "", "level": None,
                      "meaning": "an agreeing name other persons hold too weighs less",
                      "bits": float(frequency_adjustment)})
    return {"steps": steps, "total": float(sum(s["bits"] for s in steps)), "counts": counts}
