"""The contract model: one ODCS-style YAML per dataset, loaded into typed objects.

The YAML is the single source of truth. `load_contract(name)` parses and checks it;
`data_contracts.compiler.compile_suite(contract)` turns its rules into a Great Expectations
suite in memory. This module does not import Great Expectations.

Rules come from three places, in this order for each property:
1. implicit ones from the property itself: `required` -> `notNull`, `unique` -> `unique`,
   `logicalTypeOptions.maxLength` (else the contract's `defaultMaxLength`) -> `maxLength`,
   and `noControlCharacters` when the contract sets `rejectControlCharacters`;
2. the property's `quality:` list;
3. the object's `quality:` list (multi-column rules such as a compound `unique`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONTRACT_DIR = Path(__file__).resolve().parent
DATASETS: tuple[str, ...] = (
    "participants", "enrollments", "services", "credentials", "employment", "wages",
    "assessments", "program_costs",
)
#: The dataset that identifies persons; every other one holds events keyed by its records.
IDENTITY_DATASET = "participants"
EVENT_DATASETS: tuple[str, ...] = tuple(d for d in DATASETS if d != IDENTITY_DATASET)
#: Datasets that hold no person data at all (no partner_record_id, no identity fields): their
#: rows are facts about a partner's programs and are published at program level.
PROGRAM_DATASETS: tuple[str, ...] = ("program_costs",)
CLASSIFICATIONS = frozenset({"pii-direct", "pii-quasi", "sensitive", "internal", "public"})
PII_CLASSIFICATIONS = frozenset({"pii-direct", "pii-quasi"})
SEVERITIES = frozenset({"error", "warning"})

# rule -> (default reason code, needs parameters)
RULE_KINDS: dict[str, str] = {
    "notNull": "missing",
    "unique": "duplicate",
    "regex": "format",
    "allowedValues": "not_allowed",
    "maxLength": "too_long",
    "noControlCharacters": "control_characters",
    "noFormula": "formula_injection",
    "numeric": "not_numeric",
    "between": "out_of_range",
    "dateValid": "invalid_date",
    "ageInRange": "age_out_of_range",
    "ssnValid": "invalid_ssn",
    "notBefore": "before_start",
}
_RULE_KEYS = {"type", "rule", "severity", "description", "code", "name", "column", "columns",
              "dimension", "businessImpact"}


def header_key(text: str) -> str:
    """How headers are compared: Unicode-normalized, case-folded, letters and digits only
    (`' First Name '`, `first_name` and `FIRSTNAME` are one key; `SS#` is `ss`)."""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


class ContractError(ValueError):
    """A contract file is malformed (a bug in the contract, never in partner data)."""


@dataclass(frozen=True)
class Rule:
    """One quality rule of a contract, bound to its column(s)."""

    id: str
    rule: str
    columns: tuple[str, ...]
    severity: str
    message: str
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)
    origin: str = "quality"  # "implicit" | "quality" | "object"

    @property
    def column(self) -> str:
        return self.columns[0]


@dataclass(frozen=True)
class Property:
    """One column of a dataset."""

    name: str
    logical_type: str
    required: bool
    unique: bool
    classification: str
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    custom: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_pii(self) -> bool:
        return self.classification in PII_CLASSIFICATIONS

    @property
    def pirl_element(self) -> Any:
        return self.custom.get("pirlElement")

    @property
    def synonyms(self) -> Mapping[str, str]:
        return self.custom.get("synonyms") or {}

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other header spellings partners use for this column (`customProperties.aliases`);
        headers are compared case-, space- and punctuation-insensitively."""
        return tuple(str(a) for a in self.custom.get("aliases") or ())

    @property
    def required_column(self) -> bool:
        """The column must be in the header: `required` (a value in every row), or
        `customProperties.requiredColumn` (the column must be there; an empty value is a
        warning that drops the field, not the row)."""
        return self.required or bool(self.custom.get("requiredColumn"))

    @property
    def numeric_width(self) -> int | None:
        """Digits of a code a spreadsheet may store as a number (`customProperties.
        numericWidth`: SSN 9, ZIP 5): a numeric cell is zero-padded back to this width."""
        width = self.custom.get("numericWidth")
        return int(width) if width else None


@dataclass(frozen=True)
class Contract:
    """A loaded data contract."""

    id: str
    name: str
    version: str
    status: str
    description: str
    properties: tuple[Property, ...]
    rules: tuple[Rule, ...]
    custom: Mapping[str, Any]
    path: Path
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [prop.name for prop in self.properties]

    @property
    def required_columns(self) -> list[str]:
        """Columns the header must hold (a file without one is rejected)."""
        return [prop.name for prop in self.properties if prop.required_column]

    @property
    def placeholders(self) -> frozenset[str]:
        """Cell texts read as empty (`customProperties.placeholders`: N/A, NULL, ...),
        compared case-insensitively after trimming."""
        return frozenset(str(p).strip().casefold()
                         for p in self.custom.get("placeholders") or ())

    @property
    def pii_columns(self) -> list[str]:
        return [prop.name for prop in self.properties if prop.is_pii]

    def property(self, name: str) -> Property:
        for prop in self.properties:
            if prop.name == name:
                return prop
        raise KeyError(name)

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def _custom(items: Any, where: str) -> dict[str, Any]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ContractError(f"{where}: customProperties must be a list of property/value")
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, Mapping) or "property" not in item:
            raise ContractError(f"{where}: customProperties items need 'property' and 'value'")
        out[str(item["property"])] = item.get("value")
    return out


def _make_rule(spec: Mapping[str, Any], columns: tuple[str, ...], where: str, seen: set[str],
               origin: str) -> Rule:
    kind = spec.get("rule")
    if kind not in RULE_KINDS:
        raise ContractError(f"{where}: unknown rule {kind!r}")
    severity = spec.get("severity", "error")
    if severity not in SEVERITIES:
        raise ContractError(f"{where}: severity must be error or warning, not {severity!r}")
    message = str(spec.get("description") or "").strip()
    if not message:
        raise ContractError(f"{where}: rule {kind} needs a description (the partner's message)")
    base = f"{'+'.join(columns)}.{kind}"
    rule_id, n = base, 1
    while rule_id in seen:
        n += 1
        rule_id = f"{base}.{n}"
    seen.add(rule_id)
    params = {k: v for k, v in spec.items() if k not in _RULE_KEYS}
    if kind == "regex" and "pattern" not in params:
        raise ContractError(f"{where}: regex rule needs 'pattern'")
    if kind == "allowedValues" and not params.get("values"):
        raise ContractError(f"{where}: allowedValues rule needs 'values'")
    if kind == "notBefore" and "other" not in params:
        raise ContractError(f"{where}: notBefore rule needs 'other' (the earlier date column)")
    return Rule(id=rule_id, rule=kind, columns=columns, severity=severity, message=message,
                code=str(spec.get("code") or RULE_KINDS[kind]), params=params, origin=origin)


def parse_contract(doc: Mapping[str, Any], path: Path) -> Contract:
    """Check and convert a parsed contract document."""
    where = path.name
    for key in ("apiVersion", "kind", "id", "version", "status", "name", "schema"):
        if key not in doc:
            raise ContractError(f"{where}: missing top-level '{key}'")
    if doc["kind"] != "DataContract":
        raise ContractError(f"{where}: kind must be DataContract")
    schema = doc["schema"]
    if not isinstance(schema, list) or len(schema) != 1:
        raise ContractError(f"{where}: schema must hold exactly one object")
    obj = schema[0]
    custom = _custom(doc.get("customProperties"), where)
    default_max = custom.get("defaultMaxLength")
    reject_control = bool(custom.get("rejectControlCharacters"))
    # severity of the implicit per-field rules (maxLength, noControlCharacters) on columns
    # other than the key: `warning` drops the field and keeps the row
    field_severity = str(custom.get("fieldRuleSeverity", "error"))
    if field_severity not in SEVERITIES:
        raise ContractError(f"{where}: fieldRuleSeverity must be error or warning")
    props: list[Property] = []
    rules: list[Rule] = []
    seen: set[str] = set()
    names: set[str] = set()
    for spec in obj.get("properties") or []:
        name = spec.get("name")
        pwhere = f"{where}: property {name!r}"
        if not name or name in names or name.startswith("__"):
            raise ContractError(f"{pwhere}: missing, duplicate or reserved name")
        names.add(name)
        classification = spec.get("classification")
        if classification not in CLASSIFICATIONS:
            raise ContractError(f"{pwhere}: classification must be one of "
                                f"{sorted(CLASSIFICATIONS)}")
        options = dict(spec.get("logicalTypeOptions") or {})
        prop = Property(
            name=name, logical_type=str(spec.get("logicalType", "string")),
            required=bool(spec.get("required", False)), unique=bool(spec.get("unique", False)),
            classification=classification, description=str(spec.get("description") or ""),
            options=options, custom=_custom(spec.get("customProperties"), pwhere),
        )
        props.append(prop)
        cols = (name,)
        implicit_severity = "error" if prop.unique or spec.get("primaryKey") else field_severity
        if prop.required:
            rules.append(_make_rule({"rule": "notNull", "severity": "error", "description":
                                     f"{name} is required."}, cols, pwhere, seen, "implicit"))
        if prop.unique:
            rules.append(_make_rule({"rule": "unique", "severity": "error", "description":
                                     f"{name} must be unique within the file."},
                                    cols, pwhere, seen, "implicit"))
        max_length = options.get("maxLength", default_max)
        if max_length is not None:
            rules.append(_make_rule({"rule": "maxLength", "value": int(max_length),
                                     "severity": implicit_severity, "description":
                                     f"{name} is longer than {int(max_length)} characters."},
                                    cols, pwhere, seen, "implicit"))
        if reject_control:
            rules.append(_make_rule({"rule": "noControlCharacters",
                                     "severity": implicit_severity, "description":
                                     f"{name} contains control characters "
                                     "(for example NUL bytes)."}, cols, pwhere, seen,
                                    "implicit"))
        for rule_spec in spec.get("quality") or []:
            rules.append(_make_rule(rule_spec, cols, pwhere, seen, "quality"))
    if not props:
        raise ContractError(f"{where}: no properties")
    spellings: dict[str, str] = {}
    for prop in props:
        for spelling in (prop.name, *prop.aliases):
            key = header_key(spelling)
            if spellings.setdefault(key, prop.name) != prop.name:
                raise ContractError(f"{where}: header spelling {spelling!r} of {prop.name!r} "
                                    f"already names {spellings[key]!r}")
    for rule_spec in obj.get("quality") or []:
        cols = tuple(rule_spec.get("columns") or [rule_spec.get("column")])
        if not cols or any(col not in names for col in cols):
            raise ContractError(f"{where}: object rule names unknown columns {cols}")
        rules.append(_make_rule(rule_spec, cols, where, seen, "object"))
    for rule in rules:
        other = rule.params.get("other")
        if rule.rule == "notBefore" and other not in names:
            raise ContractError(f"{where}: {rule.id} refers to unknown column {other!r}")
    description = doc.get("description") or ""
    if isinstance(description, Mapping):
        description = str(description.get("purpose") or "")
    return Contract(
        id=str(doc["id"]), name=str(doc["name"]), version=str(doc["version"]),
        status=str(doc["status"]), description=str(description).strip(),
        properties=tuple(props), rules=tuple(rules), custom=custom, path=path, raw=doc,
    )


@cache
def load_contract(name: str) -> Contract:
    """Load `data_contracts/<name>.yaml`.

    Raises:
        KeyError: `name` is not a known dataset.
        ContractError: the YAML breaks the contract format.
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    path = CONTRACT_DIR / f"{name}.yaml"
    with path.open(encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    contract = parse_contract(doc, path)
    if contract.name != name:
        raise ContractError(f"{path.name}: name is {contract.name!r}, expected {name!r}")
    return contract


def contract_version(name: str) -> str:
    """`"<name>@<version>"` of a dataset's contract (stored with every ingested file)."""
    contract = load_contract(name)
    return f"{contract.name}@{contract.version}"


def pii_columns(name: str) -> tuple[str, ...]:
    """The columns of a dataset classified `pii-direct` or `pii-quasi`, in contract order."""
    return tuple(load_contract(name).pii_columns)


def sensitive_columns(name: str) -> tuple[str, ...]:
    """The columns of a dataset classified `sensitive`, in contract order (reporting
    attributes such as race or barriers: not identifying, published only aggregated)."""
    return tuple(p.name for p in load_contract(name).properties
                 if p.classification == "sensitive")
