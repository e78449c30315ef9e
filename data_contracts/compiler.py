"""Compile a data contract to a Great Expectations suite, in memory.

Two steps, as in datacontract-cli: contract rules -> engine-neutral `Check`s -> GE
expectations. Rules GE cannot express on raw text (a real calendar date, SSN validity, age on
the reporting date, numbers written as text, duplicates, date order) are checked on DERIVED
columns that intake computes before validation (`derivations()` says which); the compiler only
emits expectations on those columns.

Every expectation carries `meta = {rule_id, field, code, severity, contract}` so that a
validation result maps back to contract rules, and `description` = the rule's message.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from data_contracts.model import Contract, Rule

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

# Derived columns computed by pipelines.ingest before validation.
READ_ISSUE_COLUMN = "__read_issue"
ROW_COLUMN = "__row"

# A leading =, @ (anything after) or +, - followed by a word character or "(" reads as a
# formula in a spreadsheet. Scoped to names, addresses and free text: phone "+1 ..." and
# negative amounts never carry this rule.
FORMULA_REGEX = r"^\s*(?:[=@]|[+\-]\s*[\w(])"
CONTROL_CHARACTERS_REGEX = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
NUMBER_REGEX = r"^(?=[^\d]*\d)[-+]?\$?(?:\d{1,3}(?:,\d{3})+|\d*)(?:\.\d+)?$"

# The structural rule added to every suite: rows the reader could not split cleanly.
WELL_FORMED_RULE = Rule(
    id="__row.wellFormed", rule="wellFormed", columns=("row",), severity="error",
    message="The row has more fields than the header.", code="malformed_row",
    origin="implicit",
)


@dataclass(frozen=True)
class Derivation:
    """A column intake must compute before validation."""

    column: str
    kind: str  # date_issue | age | ssn_issue | number | duplicate | order_issue | read_issue
    rule: Rule


@dataclass(frozen=True)
class Check:
    """One engine-neutral check: a GE expectation class name and its kwargs."""

    rule: Rule
    expectation: str
    kwargs: dict[str, Any] = field(default_factory=dict)


def derived_column(rule: Rule) -> str | None:
    """Name of the derived column a rule is checked on, or None if it checks raw text."""
    col = rule.column
    return {
        "dateValid": f"__date_issue__{col}",
        "ageInRange": f"__age__{col}",
        "ssnValid": f"__ssn_issue__{col}",
        "between": f"__number__{col}",
        "unique": "__duplicate__" + "__".join(rule.columns),
        "notBefore": f"__order_issue__{col}",
        "wellFormed": READ_ISSUE_COLUMN,
    }.get(rule.rule)


_DERIVED_KIND = {
    "dateValid": "date_issue", "ageInRange": "age", "ssnValid": "ssn_issue",
    "between": "number", "unique": "duplicate", "notBefore": "order_issue",
    "wellFormed": "read_issue",
}


def all_rules(contract: Contract) -> list[Rule]:
    """The contract's rules plus the structural rule every suite carries."""
    return [*contract.rules, WELL_FORMED_RULE]


def derivations(contract: Contract) -> list[Derivation]:
    """Derived columns intake must add, one per rule that needs one."""
    out: list[Derivation] = []
    for rule in all_rules(contract):
        column = derived_column(rule)
        if column is not None:
            out.append(Derivation(column=column, kind=_DERIVED_KIND[rule.rule], rule=rule))
    return out


def _set_regex(values: list[str], separator: str) -> str:
    one = "(?:" + "|".join(re.escape(str(v)) for v in values) + ")"
    return f"^{one}(?:{re.escape(separator)}{one})*$"


def checks(contract: Contract, *, age_range: tuple[int, int] | None = None) -> list[Check]:
    """Translate every rule into one engine-neutral check."""
    out: list[Check] = []
    for rule in all_rules(contract):
        col, params = rule.column, rule.params
        derived = derived_column(rule)
        kind = rule.rule
        if kind == "notNull":
            out.append(Check(rule, "ExpectColumnValuesToNotBeNull", {"column": col}))
        elif kind == "regex":
            out.append(Check(rule, "ExpectColumnValuesToMatchRegex",
                             {"column": col, "regex": str(params["pattern"])}))
        elif kind == "allowedValues":
            values = [str(v) for v in params["values"]]
            if params.get("separator"):
                out.append(Check(rule, "ExpectColumnValuesToMatchRegex",
                                 {"column": col,
                                  "regex": _set_regex(values, str(params["separator"]))}))
            else:
                out.append(Check(rule, "ExpectColumnValuesToBeInSet",
                                 {"column": col, "value_set": values}))
        elif kind == "maxLength":
            out.append(Check(rule, "ExpectColumnValueLengthsToBeBetween",
                             {"column": col, "min_value": 0,
                              "max_value": int(params["value"])}))
        elif kind == "noControlCharacters":
            out.append(Check(rule, "ExpectColumnValuesToNotMatchRegex",
                             {"column": col, "regex": CONTROL_CHARACTERS_REGEX}))
        elif kind == "noFormula":
            out.append(Check(rule, "ExpectColumnValuesToNotMatchRegex",
                             {"column": col, "regex": FORMULA_REGEX}))
        elif kind == "numeric":
            out.append(Check(rule, "ExpectColumnValuesToMatchRegex",
                             {"column": col, "regex": NUMBER_REGEX}))
        elif kind in ("between", "ageInRange"):
            low, high = params.get("min"), params.get("max")
            if kind == "ageInRange" and age_range is not None:
                low, high = age_range
            out.append(Check(rule, "ExpectColumnValuesToBeBetween",
                             {"column": derived, "min_value": low, "max_value": high}))
        elif kind in ("unique", "dateValid", "ssnValid", "notBefore", "wellFormed"):
            out.append(Check(rule, "ExpectColumnValuesToBeNull", {"column": derived}))
        else:  # pragma: no cover - load_contract refuses unknown rules
            raise ValueError(f"no compilation for rule {kind}")
    return out


def suite_name(contract: Contract) -> str:
    return f"{contract.name}@{contract.version}"


def compile_suite(contract: Contract, *, age_range: tuple[int, int] | None = None,
                  skip_rule_ids: frozenset[str] = frozenset()) -> Any:
    """Build a `great_expectations.ExpectationSuite` from the contract (not stored anywhere).

    Args:
        contract: The loaded contract.
        age_range: The program's (min, max) age, overriding the contract's `ageInRange`.
        skip_rule_ids: Rules to leave out (intake skips checks on columns that are entirely
            empty in a file: they pass trivially, and each GE expectation costs ~10 ms).
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    gx_context()  # GE objects need an active context
    expectations = []
    for check in checks(contract, age_range=age_range):
        rule = check.rule
        if rule.id in skip_rule_ids:
            continue
        cls = getattr(gxe, check.expectation)
        expectations.append(cls(
            **check.kwargs,
            description=rule.message,
            severity="critical" if rule.severity == "error" else "warning",
            meta={"rule_id": rule.id, "field": rule.column, "code": rule.code,
                  "severity": rule.severity, "contract": suite_name(contract)},
        ))
    return gx.ExpectationSuite(
        name=suite_name(contract),
        expectations=expectations,
        meta={"contract_id": contract.id, "contract_version": contract.version,
              "age_range": list(age_range) if age_range else None,
              "not_evaluated_empty_columns": sorted(skip_rule_ids)},
    )


_CONTEXT: Any = None
_CONTEXT_LOCK = threading.Lock()


def gx_context() -> Any:
    """The process-wide ephemeral GE context (no files, no analytics, no progress bars)."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            # GE logs housekeeping (temporary docs folders) at INFO; keep run logs readable.
            logging.getLogger("great_expectations").setLevel(logging.WARNING)

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(
                globally=False, metric_calculations=False)
            _CONTEXT = context
        return _CONTEXT


def gx_validation_result(contract: Contract, results: list[Any], *,
                         age_range: tuple[int, int] | None = None,
                         row_column: str = ROW_COLUMN) -> Any:
    """A GE `ExpectationSuiteValidationResult` from the vectorised pass's results.

    The suite is the compiled one (the same expectations, kwargs, meta and descriptions); each
    expectation's result holds what GE's COMPLETE format with `exclude_unexpected_values`
    holds: counts and the unexpected rows' `row_column` ids, never a value. Used to render the
    partner's Data Docs without validating a second time (`data_contracts.vectorised`; the
    two engines are held equal by tests/unit/test_check_engines.py).

    Args:
        contract: The contract the results were checked against.
        results: `data_contracts.vectorised.CheckResult`s, one per check.
        age_range: The program's age range the checks were compiled with.
        row_column: The row-number column named in the results.
    """
    from great_expectations.core import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )

    suite = compile_suite(contract, age_range=age_range)
    by_rule = {e.meta["rule_id"]: e for e in suite.expectations}
    out = []
    for item in results:
        expectation = by_rule[item.check.rule.id]
        total = item.element_count
        rows = [{row_column: int(r)} for r in item.unexpected_rows]
        share = (100.0 * item.unexpected_count / total) if total else 0.0
        result: dict[str, Any] = {
            "element_count": total, "unexpected_count": item.unexpected_count,
            "unexpected_percent": share, "unexpected_index_column_names": [row_column],
            "partial_unexpected_index_list": rows[:20], "unexpected_index_list": rows,
        }
        if item.check.expectation not in ("ExpectColumnValuesToNotBeNull",
                                          "ExpectColumnValuesToBeNull"):
            present = total - item.missing_count
            result.update({
                "missing_count": item.missing_count,
                "missing_percent": (100.0 * item.missing_count / total) if total else 0.0,
                "unexpected_percent_total": share,
                "unexpected_percent_nonmissing":
                    (100.0 * item.unexpected_count / present) if present else 0.0,
            })
        out.append(ExpectationValidationResult(
            success=item.success, expectation_config=expectation.configuration, result=result,
            exception_info={"raised_exception": False, "exception_traceback": None,
                            "exception_message": None}))
    failed = sum(not r.success for r in out)
    return ExpectationSuiteValidationResult(
        success=failed == 0, results=out, suite_name=suite.name,
        statistics={"evaluated_expectations": len(out),
                    "successful_expectations": len(out) - failed,
                    "unsuccessful_expectations": failed,
                    "success_percent": 100.0 * (len(out) - failed) / len(out) if out else None},
        meta={"engine": "pathlink vectorised checks (data_contracts.vectorised)",
              "contract_id": contract.id, "contract_version": contract.version})
