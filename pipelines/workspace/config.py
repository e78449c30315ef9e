"""Workspace layout and configuration (`pathlink.toml`).

A workspace is a folder::

    pathlink.toml                      partners, key id(s), paths, thresholds
    landing/<partner_id>/<YYYY-MM>/<dataset>.<csv|xlsx|parquet>
    state/                             restricted: state.duckdb, quarantine/, reports/
    secrets/<key_id>.key               shared secret (0600) unless supplied by environment
    published/pathlink.duckdb          the evaluators' file: aggregates only (released_*)
    research/<agreement>/              person-level extracts made under a research agreement

Release and access (docs/warehouse.md): ``[release]`` (mode, k and the declared
quasi-identifiers of research extracts, wage banding, the differential-privacy budget),
``[query]`` (the sandbox's limits) and ``[agreements.<id>]`` (data-sharing agreements: partners,
tier, purpose, expiry, grantee) are read into :class:`ReleaseSettings`, :class:`QueryLimits` and
:class:`Agreement`; ``[roi]`` (the earnings window, the return figure's horizon and discount
rate) into :class:`RoiSettings`.

Keys (docs/keys.md): ``[workspace] key_id`` is the current key, the one new data is encoded
under. During a key rotation's overlap ``[workspace] previous_key_ids`` lists the key ids whose
encoded drops are still accepted (oldest first). Per-key settings may sit in ``[keys.<key_id>]``:
``fingerprint`` (for a hub that holds no secret because every partner encodes) and
``prefect_secret_block``; for the current key ``[workspace] key_fingerprint`` and
``[workspace] prefect_secret_block`` do the same. The config names keys by id only, never
material.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import re
import secrets as _secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from keys import (
    KeyMismatchError,
    KeyRing,
    SecretError,
    SharedSecret,
    env_var_name,
    generate_secret,
    load_secret,
    validate_key_id,
    write_secret_file,
)
from pipelines.workspace import modes

CONFIG_NAME = "pathlink.toml"
PARTNER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,62}$")


class WorkspaceError(Exception):
    """A workspace is missing, malformed, or asked to do something it cannot."""


@dataclass(frozen=True)
class IntakeLimits:
    """What one dropped file may hold (`[limits]` in pathlink.toml); beyond any of these the
    file is refused with a message naming the limit, before it is read into memory.

    `max_uncompressed_bytes` bounds the file on disk and what an XLSX or Parquet expands to;
    `max_field_bytes` one field (and a CSV line may hold four times that).
    """

    max_uncompressed_bytes: int = 512 * 1024 * 1024
    max_rows: int = 1_000_000
    max_columns: int = 500
    max_field_bytes: int = 1024 * 1024
    max_sheets: int = 20

    @classmethod
    def from_config(cls, table: dict[str, Any], where: str) -> IntakeLimits:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(table) - known)
        if unknown:
            raise WorkspaceError(f"{where}: unknown [limits] setting(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(sorted(known))}")
        values = {}
        for key, value in table.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WorkspaceError(f"{where}: [limits] {key} must be a positive integer")
            values[key] = value
        return cls(**values)


@dataclass(frozen=True)
class NotifyConfig:
    """Who hears about a run (`[notify]`): a command (run without a shell, the counts-only
    summary as JSON on its standard input) and/or a webhook on this machine (POSTed the same
    JSON), on `failure` and/or `success`."""

    command: tuple[str, ...] = ()
    webhook: str | None = None
    on: tuple[str, ...] = ("failure", "success")
    timeout: float = 30.0

    @property
    def configured(self) -> bool:
        return bool(self.command or self.webhook)

    @classmethod
    def from_config(cls, table: dict[str, Any], where: str) -> NotifyConfig:
        import shlex
        from urllib.parse import urlsplit

        known = {"command", "webhook", "on", "timeout"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise WorkspaceError(f"{where}: unknown [notify] setting(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(sorted(known))}")
        command = table.get("command", ())
        if isinstance(command, str):
            command = shlex.split(command)
        if not isinstance(command, list | tuple) or not all(isinstance(c, str) for c in command):
            raise WorkspaceError(f"{where}: [notify] command must be a command line or a list "
                                 "of arguments")
        webhook = table.get("webhook") or None
        if webhook is not None:
            parts = urlsplit(str(webhook))
            if parts.scheme not in ("http", "https") or parts.hostname not in LOCAL_HOSTS:
                raise WorkspaceError(
                    f"{where}: [notify] webhook must be a local http(s) address (host "
                    f"{', '.join(sorted(LOCAL_HOSTS))}); relay from there to anywhere else")
        on = table.get("on", ["failure", "success"])
        if isinstance(on, str):
            on = [on]
        if not on or not set(on) <= {"failure", "success"}:
            raise WorkspaceError(f"{where}: [notify] on must list failure and/or success")
        timeout = table.get("timeout", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise WorkspaceError(f"{where}: [notify] timeout must be a positive number of "
                                 "seconds")
        return cls(tuple(command), str(webhook) if webhook else None, tuple(on), float(timeout))


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class PartnerConfig:
    """One registered partner and how to read its drops."""

    partner_id: str
    name: str = ""
    age_min: int | None = None
    age_max: int | None = None
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    sheet: str | None = None  # the XLSX sheet holding the data (default: found by its header)

    @property
    def age_range(self) -> tuple[int, int] | None:
        if self.age_min is None or self.age_max is None:
            return None
        return (self.age_min, self.age_max)

    def reading_fingerprint(self) -> str:
        """A hash of everything that decides how this partner's files are read and judged
        (column and value maps, sheet, age range): the ledger records it with every file, and
        a change makes the partner's drops eligible for reprocessing."""
        import hashlib
        import json

        settings = {"columns": self.columns, "values": self.values, "sheet": self.sheet,
                    "age_range": list(self.age_range) if self.age_range else None}
        text = json.dumps(settings, sort_keys=True, ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


RELEASE_MODES = ("suppression", "dp")
TIERS = ("published", "research")
#: Declared quasi-identifiers of a research extract, in the order they are generalized.
QUASI_IDENTIFIERS = ("birth_year", "sex", "zip3", "partners", "entry_period", "exit_period",
                     "program")
AGREEMENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class ReleaseSettings:
    """``[release]``: how figures are published and research extracts are made.

    Attributes:
        mode: ``suppression`` (small-cell and complementary suppression) or ``dp`` (counts and
            medians from OpenDP under the ``rho`` budget).
        k: Every combination of the declared quasi-identifiers in a research extract holds at
            least ``k`` persons.
        quasi_identifiers: The declared quasi-identifiers (a subset of
            :data:`QUASI_IDENTIFIERS`).
        wage_band: Research extracts give earnings rounded down to bands of this many dollars.
        wage_top_code: ... and top-coded at this amount ("20000+").
        rho: The zero-concentrated DP budget of one release (``dp`` mode).
        delta: The delta at which the report states the equivalent (epsilon, delta).
        max_units_per_person: ``dp`` mode: each person contributes at most this many units
            (exits, enrollments) to a measure; the rest are dropped before counting.
    """

    mode: str = "suppression"
    k: int = 11
    quasi_identifiers: tuple[str, ...] = QUASI_IDENTIFIERS
    wage_band: int = 1000
    wage_top_code: int = 20000
    rho: float = 1.0
    delta: float = 1e-6
    max_units_per_person: int = 2


@dataclass(frozen=True)
class RoiSettings:
    """``[roi]``: the earnings change and the return figure (docs/warehouse.md, "Return on
    investment").

    Attributes:
        pre_quarters: "Before" is the total UI wages of this many quarters before the entry
            quarter.
        post_first, post_last: "After" is the total of the quarters from ``post_first`` to
            ``post_last`` after the exit quarter; as many quarters as before.
        horizon_years: The return figure counts the yearly earnings gain for this many years.
        discount_rate: ... discounted at this yearly rate.
    """

    pre_quarters: int = 4
    post_first: int = 2
    post_last: int = 5
    horizon_years: int = 3
    discount_rate: float = 0.03

    @property
    def window_quarters(self) -> int:
        """Quarters in each of the before and after windows."""
        return self.pre_quarters


@dataclass(frozen=True)
class QueryLimits:
    """``[query]``: the bounds of one `pathlink query` in the sandbox."""

    timeout_seconds: float = 10.0
    memory_limit_mb: int = 512
    threads: int = 1
    max_rows: int = 10000


@dataclass(frozen=True)
class Agreement:
    """``[agreements.<id>]``: a data-sharing agreement under which data may be queried or
    extracted.

    Attributes:
        agreement_id: The table name.
        partners: Partner ids whose data it may use (``("*",)``: every registered partner).
        tier: ``published`` (queries and exports of the released aggregates) or ``research``
            (that, and a person-level research extract).
        purpose: What the data is for, as agreed.
        expires: The last day the agreement is live.
        grantee: Who receives the data.
    """

    agreement_id: str
    partners: tuple[str, ...]
    tier: str
    purpose: str
    expires: dt.date
    grantee: str

    def covers(self, partner_id: str) -> bool:
        return "*" in self.partners or partner_id in self.partners

    def live(self, today: dt.date | None = None) -> bool:
        return (today or dt.date.today()) <= self.expires


#: `[runner] kind` values that ingest in the run's own process (a thread pool).
IN_PROCESS_RUNNERS = ("default", "thread", "threads")


@dataclass(frozen=True)
class Workspace:
    """A loaded workspace: its root folder and settings."""

    root: Path
    name: str
    key_id: str
    key_dir: Path
    partners: dict[str, PartnerConfig]
    max_quarantine_share: float = 0.5
    small_cell_threshold: int = 10
    task_runner: str = "default"
    dask_address: str | None = None
    dask_workers: int = 2
    prefect_api_url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    previous_key_ids: tuple[str, ...] = ()
    limits: IntakeLimits = field(default_factory=IntakeLimits)
    release: ReleaseSettings = field(default_factory=ReleaseSettings)
    query_limits: QueryLimits = field(default_factory=QueryLimits)
    agreements: dict[str, Agreement] = field(default_factory=dict)
    roi: RoiSettings = field(default_factory=RoiSettings)
    #: `[linkage]` match_weight_threshold / possible_weight_threshold: the match and
    #: clerical-review thresholds (log2 match weight); None: the linkage spec's
    match_weight_threshold: float | None = None
    possible_weight_threshold: float | None = None
    landing_group: str | None = None  # landing/ 0750 owned by this group (default: 0700)
    max_person_drop: float = 0.10  # a release losing more persons than this share is held
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    @property
    def ingests_in_process(self) -> bool:
        """Whether partners' drops are ingested in the run's own process (`[runner] kind`
        default: Prefect's thread pool), not on Dask workers."""
        return (self.task_runner or "default").lower() in IN_PROCESS_RUNNERS

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every configured key id, oldest first; the last is the current key."""
        return (*self.previous_key_ids, self.key_id)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def state_db(self) -> Path:
        return self.state_dir / "state.duckdb"

    @property
    def quarantine_dir(self) -> Path:
        return self.state_dir / "quarantine"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def published_db(self) -> Path:
        """The evaluators' file: released aggregates only."""
        return self.root / "published" / "pathlink.duckdb"

    @property
    def warehouse_db(self) -> Path:
        """The analyst's person-level warehouse the release is computed from (restricted)."""
        return self.state_dir / "warehouse.duckdb"

    @property
    def audit_log(self) -> Path:
        """The append-only log of every query, export and extract (restricted)."""
        return self.state_dir / "audit.log"

    def research_dir(self, agreement_id: str) -> Path:
        """Where the research extracts of one agreement are written."""
        return self.root / "research" / agreement_id

    def agreement(self, agreement_id: str, *, tier: str,
                  today: dt.date | None = None) -> Agreement:
        """A live agreement of at least ``tier``, or a :class:`WorkspaceError` saying why not.

        A ``research`` agreement also allows what a ``published`` one does.
        """
        found = self.agreements.get(agreement_id)
        if found is None:
            known = ", ".join(sorted(self.agreements)) or "none configured"
            raise WorkspaceError(f"no agreement '{agreement_id}' in {self.config_path} "
                                 f"(agreements: {known}); add [agreements.{agreement_id}]")
        if not found.live(today):
            raise WorkspaceError(f"agreement '{agreement_id}' expired on "
                                 f"{found.expires.isoformat()}; refused")
        if tier == "research" and found.tier != "research":
            raise WorkspaceError(f"agreement '{agreement_id}' is for the {found.tier} tier; a "
                                 "research extract needs tier = \"research\"")
        return found

    def _key_settings(self, key_id: str) -> dict[str, Any]:
        """``[keys.<key_id>]``, plus ``[workspace]`` fingerprint/block for the current key."""
        settings = dict(self.raw.get("keys", {}).get(key_id, {}))
        if key_id == self.key_id:
            ws = self.raw.get("workspace", {})
            if ws.get("key_fingerprint"):
                settings.setdefault("fingerprint", ws["key_fingerprint"])
            if ws.get("prefect_secret_block"):
                settings.setdefault("prefect_secret_block", ws["prefect_secret_block"])
        return settings

    def load_secret(self, key_id: str | None = None) -> SharedSecret:
        """Load a shared secret by key id (default: the current key).

        From a Prefect Secret block when `[workspace] prefect_secret_block` (current key) or
        `[keys.<key_id>] prefect_secret_block` names one (the value is the urlsafe base64 of the
        32-byte secret); otherwise the environment variable `PATHLINK_SECRET_<KEY_ID>`, then
        `<key_dir>/<key_id>.key`.
        """
        key_id = key_id or self.key_id
        if key_id not in self.key_ids:
            raise WorkspaceError(f"key id '{key_id}' is not configured in {self.config_path}")
        block = self._key_settings(key_id).get("prefect_secret_block")
        if block:
            secret = _secret_from_prefect_block(key_id, block)
        else:
            secret = load_secret(key_id, key_dir=self.key_dir)
        pinned = self.pinned_fingerprint(key_id)
        if pinned is not None and secret.fingerprint != pinned:
            raise KeyMismatchError(self.pin_mismatch(key_id, secret.source, secret.fingerprint))
        return secret

    def pinned_fingerprint(self, key_id: str | None = None) -> str | None:
        """The fingerprint this workspace recorded for a key id when the key was created or
        rotated in (`[keys.<id>] fingerprint`, or `[workspace] key_fingerprint` for the
        current key), or None for a workspace made before keys were pinned."""
        value = self._key_settings(key_id or self.key_id).get("fingerprint")
        return str(value).lower() if value else None

    def pin_mismatch(self, key_id: str, source: str, fingerprint: str) -> str:
        """The one-line refusal of a secret whose fingerprint is not the pinned one."""
        hint = (f"unset {source.split(':', 1)[1]} to use the key file, or set it to the pinned "
                "secret" if source.startswith("env:") else
                "restore the key file that matches" if source.startswith("file:") else
                "point the Secret block at the pinned secret")
        return (f"key '{key_id}': the secret loaded from {source} has fingerprint "
                f"{fingerprint}, but this workspace pinned {self.pinned_fingerprint(key_id)} "
                f"for it ([keys.{key_id}] in {self.config_path}); nothing was written. "
                f"{hint[0].upper()}{hint[1:]}; a new secret needs a new key id (`pathlink "
                "keys rotate`, docs/keys.md)")

    def fingerprint_of(self, key_id: str) -> str:
        """A configured key's public fingerprint: from the config (`fingerprint` in
        `[keys.<key_id>]`, or `[workspace] key_fingerprint` for the current key) when the hub
        holds no secret because every partner encodes, otherwise from the secret."""
        configured = self._key_settings(key_id).get("fingerprint")
        return str(configured).lower() if configured else self.load_secret(key_id).fingerprint

    def expected_fingerprint(self) -> str:
        """The current key's public fingerprint (see `fingerprint_of`)."""
        return self.fingerprint_of(self.key_id)

    def fingerprint_or_none(self, key_id: str | None = None) -> str | None:
        """`fingerprint_of` (default: the current key), or None when this hub can tell it by
        no means (neither configured nor loadable, e.g. an encrypted key file without its
        passphrase or an unreachable Secret block): for run metadata and status, which only
        read."""
        try:
            return self.fingerprint_of(key_id or self.key_id)
        except Exception:
            return None

    def previous_fingerprints(self) -> dict[str, str]:
        """`{fingerprint: key_id}` of the previous keys still accepted (rotation overlap).

        Raises:
            WorkspaceError: a previous key has neither a configured fingerprint nor a secret.
        """
        out = {}
        for key_id in self.previous_key_ids:
            try:
                out[self.fingerprint_of(key_id)] = key_id
            except SecretError as exc:
                raise WorkspaceError(
                    f"previous key '{key_id}' is configured but its fingerprint is unknown: "
                    f"{exc}; set [keys.{key_id}] fingerprint in {self.config_path} or provide "
                    "its secret"
                ) from None
        return out

    def held_secrets(self) -> KeyRing | None:
        """The configured keys whose secret this hub holds (current last), or None."""
        held = []
        for key_id in self.key_ids:
            try:
                held.append(self.load_secret(key_id))
            except (SecretError, WorkspaceError):
                continue
        return KeyRing(held) if held else None

    def partner(self, partner_id: str) -> PartnerConfig:
        """Return a registered partner or raise a message saying how to register it."""
        try:
            return self.partners[partner_id]
        except KeyError:
            raise WorkspaceError(
                f"partner '{partner_id}' is not registered in {self.config_path}; register it "
                f"with: pathlink partners add --workspace {self.root} {partner_id}"
            ) from None


def _secret_from_prefect_block(key_id: str, block: str) -> SharedSecret:
    from prefect.blocks.system import Secret  # pipelines/ may use Prefect; keys/ may not

    try:
        value = Secret.load(block).get()
    except ValueError:
        raise WorkspaceError(f"Prefect Secret block '{block}' for key id '{key_id}' was not "
                             "found") from None
    text = value if isinstance(value, str) else str(value)
    try:
        material = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (ValueError, binascii.Error):
        material = b""
    if len(material) != 32:
        raise WorkspaceError(f"Prefect Secret block '{block}' does not hold a 32-byte key "
                             "(urlsafe base64)")
    return SharedSecret(key_id, material, source=f"prefect-secret:{block}")


def _check_partner_id(partner_id: str) -> str:
    if not PARTNER_ID_RE.match(partner_id):
        raise WorkspaceError(
            f"invalid partner id {partner_id!r}: use lowercase letters, digits and '_' "
            "(start with a letter or digit, at most 63 characters)"
        )
    return partner_id


def _partner_config(partner_id: str, spec: dict[str, Any]) -> PartnerConfig:
    return PartnerConfig(
        partner_id=partner_id,
        name=spec.get("name", ""),
        age_min=spec.get("age_min"),
        age_max=spec.get("age_max"),
        columns={str(k): str(v) for k, v in spec.get("columns", {}).items()},
        values={k: dict(v) for k, v in spec.get("values", {}).items()},
        sheet=str(spec["sheet"]) if spec.get("sheet") else None,
    )


def partner_settings(path: str | Path, partner_id: str) -> PartnerConfig:
    """A partner's reading settings from a TOML file holding its `[partners.<id>]` table (the
    workspace's `pathlink.toml`, or the part of it the analyst sends the partner), for
    `pathlink check` and `pathlink encode` on the partner's own machine."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WorkspaceError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkspaceError(f"{path} is not valid TOML: {exc}") from None
    spec = raw.get("partners", {}).get(partner_id)
    if not isinstance(spec, dict):
        raise WorkspaceError(f"{path} has no [partners.{partner_id}] table")
    return _partner_config(_check_partner_id(partner_id), spec)


def load_workspace(root: str | Path) -> Workspace:
    """Read `pathlink.toml` from a workspace folder."""
    root = Path(root).resolve()
    config_path = root / CONFIG_NAME
    if not config_path.is_file():
        raise WorkspaceError(
            f"{root} is not a Pathlink workspace (no {CONFIG_NAME}); create one with "
            f"`pathlink init {root}`"
        )
    with config_path.open("rb") as fh:
        try:
            raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise WorkspaceError(f"{config_path} is not valid TOML: {exc}") from None
    ws = raw.get("workspace", {})
    thresholds = raw.get("thresholds", {})
    runner = raw.get("runner", {})
    key_dir = Path(ws.get("key_dir", "secrets"))
    if not key_dir.is_absolute():
        key_dir = root / key_dir
    key_id = ws.get("key_id", "pathlink")
    previous = _previous_key_ids(config_path, key_id, ws.get("previous_key_ids", []))
    pinned = raw.get("keys", {}).get(key_id, {}).get("fingerprint")
    if pinned and ws.get("key_fingerprint") and \
            str(pinned).lower() != str(ws["key_fingerprint"]).lower():
        raise WorkspaceError(f"{config_path}: [workspace] key_fingerprint and [keys.{key_id}] "
                             "fingerprint disagree; keep the one the key really has")
    partners = {}
    for partner_id, spec in sorted(raw.get("partners", {}).items()):
        _check_partner_id(partner_id)
        partners[partner_id] = _partner_config(partner_id, spec)
    partner_ids = tuple(partners)
    return Workspace(
        root=root,
        name=ws.get("name", root.name),
        key_id=key_id,
        key_dir=key_dir,
        partners=partners,
        max_quarantine_share=float(thresholds.get("max_quarantine_share", 0.5)),
        small_cell_threshold=int(thresholds.get("small_cell", 10)),
        task_runner=runner.get("kind", "default"),
        dask_address=runner.get("address"),
        dask_workers=int(runner.get("workers", 2)),
        prefect_api_url=runner.get("prefect_api_url") or None,
        raw=raw,
        previous_key_ids=previous,
        limits=IntakeLimits.from_config(raw.get("limits", {}), str(config_path)),
        release=_release_settings(config_path, raw.get("release", {})),
        query_limits=_query_limits(config_path, raw.get("query", {})),
        agreements=_agreements(config_path, raw.get("agreements", {}), partner_ids),
        roi=_roi_settings(config_path, raw.get("roi", {})),
        **_linkage_thresholds(raw.get("linkage", {}), config_path),
        landing_group=_landing_group(config_path, ws.get("landing_group")),
        max_person_drop=_share(config_path, "max_person_drop",
                               thresholds.get("max_person_drop", 0.10)),
        notify=NotifyConfig.from_config(raw.get("notify", {}), str(config_path)),
    )


def _linkage_thresholds(table: Any, config_path: Path) -> dict[str, float]:
    """`[linkage]`: the match and possible-match (clerical-review) weight thresholds."""
    if not isinstance(table, dict):
        raise WorkspaceError(f"{config_path}: [linkage] must be a table")
    known = ("match_weight_threshold", "possible_weight_threshold")
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise WorkspaceError(f"{config_path}: unknown [linkage] setting(s) "
                             f"{', '.join(unknown)}; known: {', '.join(known)}")
    out: dict[str, float] = {}
    for key in known:
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or value != value or abs(value) > 1000:
                raise WorkspaceError(f"{config_path}: [linkage] {key} must be a number of "
                                     "bits (a log2 match weight), e.g. -2.0")
            out[key] = float(value)
    if len(out) == 2 and out["possible_weight_threshold"] > out["match_weight_threshold"]:
        raise WorkspaceError(f"{config_path}: [linkage] possible_weight_threshold must not be "
                             "above match_weight_threshold")
    return out


def _roi_settings(config_path: Path, table: Any) -> RoiSettings:
    if not isinstance(table, dict):
        raise WorkspaceError(f"{config_path}: [roi] must be a table")
    default = RoiSettings()
    try:
        settings = RoiSettings(
            pre_quarters=int(table.get("pre_quarters", default.pre_quarters)),
            post_first=int(table.get("post_first", default.post_first)),
            post_last=int(table.get("post_last", default.post_last)),
            horizon_years=int(table.get("horizon_years", default.horizon_years)),
            discount_rate=float(table.get("discount_rate", default.discount_rate)))
    except (TypeError, ValueError) as exc:
        raise WorkspaceError(f"{config_path}: [roi]: {exc}") from None
    if not (1 <= settings.pre_quarters <= 12 and 1 <= settings.post_first <= settings.post_last
            <= 20 and settings.post_last - settings.post_first + 1 == settings.pre_quarters
            and 1 <= settings.horizon_years <= 50 and 0 <= settings.discount_rate < 1):
        raise WorkspaceError(
            f"{config_path}: [roi] needs 1 <= pre_quarters <= 12, 1 <= post_first <= post_last "
            "<= 20 with as many quarters after (post_last - post_first + 1) as before, "
            "1 <= horizon_years <= 50 and 0 <= discount_rate < 1")
    return settings


def _release_settings(config_path: Path, table: Any) -> ReleaseSettings:
    if not isinstance(table, dict):
        raise WorkspaceError(f"{config_path}: [release] must be a table")
    default = ReleaseSettings()
    mode = table.get("mode", default.mode)
    if mode not in RELEASE_MODES:
        raise WorkspaceError(f"{config_path}: [release] mode must be one of "
                             f"{', '.join(RELEASE_MODES)} (got {mode!r})")
    qis = tuple(table.get("quasi_identifiers", default.quasi_identifiers))
    unknown = [q for q in qis if q not in QUASI_IDENTIFIERS]
    if unknown or not qis:
        raise WorkspaceError(f"{config_path}: [release] quasi_identifiers must be a non-empty "
                             f"list of {', '.join(QUASI_IDENTIFIERS)} (unknown: "
                             f"{', '.join(map(str, unknown)) or 'none'})")
    try:
        settings = ReleaseSettings(
            mode=mode, k=int(table.get("k", default.k)), quasi_identifiers=qis,
            wage_band=int(table.get("wage_band", default.wage_band)),
            wage_top_code=int(table.get("wage_top_code", default.wage_top_code)),
            rho=float(table.get("rho", default.rho)),
            delta=float(table.get("delta", default.delta)),
            max_units_per_person=int(table.get("max_units_per_person",
                                               default.max_units_per_person)))
    except (TypeError, ValueError) as exc:
        raise WorkspaceError(f"{config_path}: [release]: {exc}") from None
    if settings.k < 2 or settings.wage_band < 1 or settings.wage_top_code < settings.wage_band \
            or settings.rho <= 0 or not 0 < settings.delta < 1 \
            or settings.max_units_per_person < 1:
        raise WorkspaceError(f"{config_path}: [release] needs k >= 2, wage_band >= 1, "
                             "wage_top_code >= wage_band, rho > 0, 0 < delta < 1 and "
                             "max_units_per_person >= 1")
    return settings


def _query_limits(config_path: Path, table: Any) -> QueryLimits:
    if not isinstance(table, dict):
        raise WorkspaceError(f"{config_path}: [query] must be a table")
    default = QueryLimits()
    try:
        limits = QueryLimits(
            timeout_seconds=float(table.get("timeout_seconds", default.timeout_seconds)),
            memory_limit_mb=int(table.get("memory_limit_mb", default.memory_limit_mb)),
            threads=int(table.get("threads", default.threads)),
            max_rows=int(table.get("max_rows", default.max_rows)))
    except (TypeError, ValueError) as exc:
        raise WorkspaceError(f"{config_path}: [query]: {exc}") from None
    if limits.timeout_seconds <= 0 or limits.memory_limit_mb < 16 or limits.threads < 1 \
            or limits.max_rows < 1:
        raise WorkspaceError(f"{config_path}: [query] needs timeout_seconds > 0, "
                             "memory_limit_mb >= 16, threads >= 1 and max_rows >= 1")
    return limits


def _agreements(config_path: Path, table: Any,
                partner_ids: tuple[str, ...]) -> dict[str, Agreement]:
    if not isinstance(table, dict):
        raise WorkspaceError(f"{config_path}: [agreements] must hold [agreements.<id>] tables")
    out = {}
    for agreement_id, spec in sorted(table.items()):
        where = f"{config_path}: [agreements.{agreement_id}]"
        if not AGREEMENT_ID_RE.match(agreement_id) or not isinstance(spec, dict):
            raise WorkspaceError(f"{where}: an agreement id is lowercase letters, digits, '-' "
                                 "and '_', and its entry a table")
        missing = [k for k in ("partners", "tier", "purpose", "expires", "grantee")
                   if k not in spec]
        if missing:
            raise WorkspaceError(f"{where}: missing {', '.join(missing)}")
        partners = spec["partners"]
        if isinstance(partners, str) or not isinstance(partners, list) or not partners:
            raise WorkspaceError(f"{where}: partners must be a list of partner ids, or [\"*\"]")
        unknown = [p for p in partners if p != "*" and p not in partner_ids]
        if unknown:
            raise WorkspaceError(f"{where}: partners {', '.join(map(str, unknown))} are not "
                                 "registered")
        if spec["tier"] not in TIERS:
            raise WorkspaceError(f"{where}: tier must be one of {', '.join(TIERS)}")
        expires = spec["expires"]
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                expires = None
        if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
            raise WorkspaceError(f"{where}: expires must be a date, e.g. 2027-06-30")
        purpose, grantee = str(spec["purpose"]).strip(), str(spec["grantee"]).strip()
        if not purpose or not grantee:
            raise WorkspaceError(f"{where}: purpose and grantee must not be empty")
        out[agreement_id] = Agreement(agreement_id, tuple(str(p) for p in partners),
                                      spec["tier"], purpose, expires, grantee)
    return out


def _landing_group(config_path: Path, value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise WorkspaceError(f"{config_path}: [workspace] landing_group must be a group name")
    try:
        modes.group_id(value)
    except KeyError:
        raise WorkspaceError(f"{config_path}: [workspace] landing_group '{value}' is not a "
                             "group on this machine") from None
    return value


def _share(config_path: Path, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise WorkspaceError(f"{config_path}: [thresholds] {name} must be a share between 0 "
                             "and 1, e.g. 0.1")
    return float(value)


def _previous_key_ids(config_path: Path, key_id: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list):
        raise WorkspaceError(f"{config_path}: [workspace] previous_key_ids must be a list of "
                             "key ids, e.g. [\"hub-2025a\"]")
    out: list[str] = []
    for item in value:
        try:
            validate_key_id(item)
        except ValueError as exc:
            raise WorkspaceError(f"{config_path}: previous_key_ids: {exc}") from None
        if item == key_id or item in out:
            raise WorkspaceError(f"{config_path}: previous_key_ids lists '{item}' twice or "
                                 "also as the current key_id; a rotation needs a new key id")
        out.append(item)
    return tuple(out)


def example_map(partner_id: str) -> list[str]:
    """A commented example of a partner's reading settings, written under its table."""
    return [
        "# How this partner's files are read (uncomment and edit; `pathlink check FILE",
        f"# --workspace . --partner {partner_id}` shows how each header was placed and",
        "# suggests lines for headers it could not place). Headers that match a contract",
        "# field or one of its aliases (First Name, DOB, SSN, Zip Code, ...) need no line.",
        "# sheet = \"Participants\"          # the XLSX sheet (default: the one with the header)",
        "# age_min = 16                     # the program's age range (default: the contract's)",
        "# age_max = 24",
        f"# [partners.{partner_id}.columns]  # your header = contract field",
        "# \"Client Number\" = \"partner_record_id\"",
        "# \"Birth Dt\" = \"date_of_birth\"",
        f"# [partners.{partner_id}.values.sex]  # your code = contract code",
        "# \"1\" = \"M\"",
        "# \"2\" = \"F\"",
    ]


def _with_example_maps(text: str, raw: dict[str, Any]) -> str:
    """tomli_w's text with a commented example map under each partner that has none."""
    partners = raw.get("partners", {})
    out: list[str] = []
    pending: str | None = None
    for line in text.splitlines():
        if pending is not None and (not line.strip() or line.startswith("[")):
            out += example_map(pending)
            pending = None
        out.append(line)
        match = re.fullmatch(r"\[partners\.([a-z0-9_]+)\]", line.strip())
        if match and not partners.get(match.group(1), {}).get("columns"):
            pending = match.group(1)
    if pending is not None:
        out += example_map(pending)
    return "\n".join(out) + "\n"


def _write_config(root: Path, raw: dict[str, Any]) -> None:
    path = root / CONFIG_NAME
    tmp = path.with_suffix(".toml.tmp")
    with modes.open_private(tmp, "wb") as fh:
        fh.write(_with_example_maps(tomli_w.dumps(raw), raw).encode())
    os.replace(tmp, path)


def init_workspace(
    root: str | Path,
    partners: list[str] | None = None,
    *,
    key_id: str | None = None,
    partner_profiles: dict[str, dict[str, Any]] | None = None,
) -> Workspace:
    """Create a workspace folder with its config and, unless one is supplied, a new secret.

    The secret comes from `PATHLINK_SECRET_<KEY_ID>` when set; otherwise a new one is written to
    `secrets/<key_id>.key` with mode 0600 (never under `landing/` or `published/`).
    """
    root = Path(root).resolve()
    if (root / CONFIG_NAME).exists():
        raise WorkspaceError(f"{root} already holds a workspace ({CONFIG_NAME} exists)")
    key_id = key_id or f"pathlink-{_secrets.token_hex(4)}"
    partner_profiles = partner_profiles or {}
    raw: dict[str, Any] = {
        "workspace": {"name": root.name, "key_id": key_id, "key_dir": "secrets"},
        "thresholds": {"max_quarantine_share": 0.5, "small_cell": 10},
        "linkage": _spec_thresholds(),
        "runner": {"kind": "default"},
        "partners": {},
    }
    for partner_id in partners or []:
        _check_partner_id(partner_id)
        raw["partners"][partner_id] = dict(partner_profiles.get(partner_id, {}))
    with modes.private_umask():
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("landing", "published", "state", "secrets"):
            (root / sub).mkdir(exist_ok=True)
        for partner_id in raw["partners"]:
            (root / "landing" / partner_id).mkdir(exist_ok=True)
        if not os.environ.get(env_var_name(key_id)):
            key_file = root / "secrets" / f"{key_id}.key"
            if not key_file.exists():
                write_secret_file(key_file, generate_secret(), key_id=key_id)
        # the key is pinned: a run whose secret has another fingerprint is refused
        fingerprint = _loaded_fingerprint(key_id, root / "secrets")
        if fingerprint:
            raw["keys"] = {key_id: {"fingerprint": fingerprint}}
        _write_config(root, raw)
    ws = load_workspace(root)
    enforce_modes(ws)
    return ws


def _loaded_fingerprint(key_id: str, key_dir: Path) -> str | None:
    """The fingerprint of the secret a key id loads to here (env var, then key file); for an
    encrypted key file without its passphrase, the fingerprint the file records."""
    try:
        return load_secret(key_id, key_dir=key_dir).fingerprint
    except SecretError:
        path = key_dir / f"{key_id}.key"
        if path.is_file():
            from keys import read_key_file_info

            try:
                return read_key_file_info(path).fingerprint
            except SecretError:
                return None
        return None


def pin_key(root: str | Path, key_id: str, fingerprint: str) -> Workspace:
    """Record `fingerprint` as the one the secret of `key_id` must have (`[keys.<id>]`)."""
    workspace = load_workspace(root)
    if key_id not in workspace.key_ids:
        raise WorkspaceError(f"key id '{key_id}' is not configured in {workspace.config_path}")
    if not _FINGERPRINT_RE.match(fingerprint.lower()):
        raise WorkspaceError("a key fingerprint is 32 lowercase hex digits")
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in workspace.raw.items()}
    keys_table = {k: dict(v) for k, v in raw.get("keys", {}).items()}
    keys_table.setdefault(key_id, {})["fingerprint"] = fingerprint.lower()
    raw["keys"] = keys_table
    _write_config(workspace.root, raw)
    return load_workspace(workspace.root)


def enforce_modes(ws: Workspace) -> list[Path]:
    """The workspace's modes (docs/operations.md, "File modes"): the root 0711, `landing/`
    0700 (0750 with `landing_group`), `published/` 0755 with 0644 files, and everything else
    Pathlink keeps there (config, state/, secrets/, ...) 0600 files in 0700 folders.

    Returns:
        What had to change (a workspace made before modes were enforced, or touched by hand).
    """
    root = ws.root
    changed = [root] if modes.chmod_if(root, modes.ROOT_DIR) else []
    changed += modes.secure_landing(ws.landing, ws.landing_group)
    changed += modes.open_release(ws.published_db.parent)
    for folder in {ws.state_dir, ws.key_dir}:  # only Pathlink's own: never a user's files
        if folder.parent == root:
            changed += modes.tighten_tree(folder)
    for path in (ws.config_path,):
        if path.is_file() and modes.chmod_if(path, modes.PRIVATE_FILE):
            changed.append(path)
    return changed


def _spec_thresholds() -> dict[str, float]:
    """The current linkage spec's thresholds, written into a new workspace's `[linkage]`."""
    from linkage.spec import LinkSpec

    fs = LinkSpec.load().fellegi_sunter
    return {"match_weight_threshold": float(fs.match_weight_threshold),
            "possible_weight_threshold": float(fs.possible_weight_threshold)}


def add_partner(root: str | Path, partner_id: str, *, name: str = "") -> Workspace:
    """Register a partner in the workspace config and create its landing folder."""
    workspace = load_workspace(root)
    _check_partner_id(partner_id)
    raw = dict(workspace.raw)
    raw.setdefault("partners", {})
    if partner_id in raw["partners"]:
        raise WorkspaceError(f"partner '{partner_id}' is already registered")
    raw["partners"][partner_id] = {"name": name} if name else {}
    with modes.private_umask():
        (workspace.landing / partner_id).mkdir(parents=True, exist_ok=True)
    modes.secure_landing(workspace.landing, workspace.landing_group)
    _write_config(workspace.root, raw)
    return load_workspace(workspace.root)


_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{32}$")


def rotate_key(root: str | Path, new_key_id: str, *, fingerprint: str | None = None,
               prefect_secret_block: str | None = None,
               passphrase: str | None = None) -> Workspace:
    """Start a key rotation: `new_key_id` becomes the current key, the old one a previous key.

    The new secret comes from `prefect_secret_block`, the env var `PATHLINK_SECRET_<ID>`, an
    existing `<key_dir>/<id>.key` (e.g. made by `pathlink keys generate`), or is generated
    into `<key_dir>/<id>.key` (0600; encrypted when `passphrase` is given). A hub that holds
    no secret passes the new key's public `fingerprint` instead. The old key's
    `[workspace] key_fingerprint` / `prefect_secret_block` move to `[keys.<old id>]`.

    Raises:
        WorkspaceError: an invalid or already used key id, a malformed fingerprint, or a new
            secret equal to a configured one.
    """
    workspace = load_workspace(root)
    try:
        validate_key_id(new_key_id)
    except ValueError as exc:
        raise WorkspaceError(str(exc)) from None
    if new_key_id in workspace.key_ids:
        raise WorkspaceError(f"key id '{new_key_id}' is already configured; a rotation needs a "
                             "new key id (never reuse one)")
    if fingerprint is not None and not _FINGERPRINT_RE.match(fingerprint.lower()):
        raise WorkspaceError("a key fingerprint is 32 lowercase hex digits")
    old_id = workspace.key_id
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in workspace.raw.items()}
    ws_table = raw.setdefault("workspace", {})
    keys_table = {k: dict(v) for k, v in raw.get("keys", {}).items()}
    moved = {name: ws_table.pop(key) for key, name in
             (("key_fingerprint", "fingerprint"), ("prefect_secret_block", "prefect_secret_block"))
             if ws_table.get(key)}
    if moved:
        keys_table[old_id] = {**moved, **keys_table.get(old_id, {})}
    new_settings: dict[str, str] = {}
    if fingerprint:
        new_settings["fingerprint"] = fingerprint.lower()
    if prefect_secret_block:
        new_settings["prefect_secret_block"] = prefect_secret_block
    if new_settings:
        keys_table[new_key_id] = new_settings
    ws_table["key_id"] = new_key_id
    ws_table["previous_key_ids"] = [*workspace.previous_key_ids, old_id]
    if keys_table:
        raw["keys"] = keys_table
    key_file = workspace.key_dir / f"{new_key_id}.key"
    if not new_settings and not os.environ.get(env_var_name(new_key_id)) \
            and not key_file.exists():
        workspace.key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_secret_file(key_file, generate_secret(), key_id=new_key_id, passphrase=passphrase)
    rotated = Workspace(**{**workspace.__dict__, "raw": raw, "key_id": new_key_id,
                           "previous_key_ids": tuple(ws_table["previous_key_ids"])})
    try:
        new_fp: str | None = rotated.fingerprint_of(new_key_id)
        clash = [k for k in workspace.key_ids if _fingerprint_or_none(workspace, k) == new_fp]
    except SecretError:
        # e.g. an encrypted key file without its passphrase: the fingerprint it records
        new_fp = None if new_settings else _loaded_fingerprint(new_key_id, workspace.key_dir)
        clash = []
    if clash:
        raise WorkspaceError(f"key id '{new_key_id}' holds the same secret as '{clash[0]}'; a "
                             "rotation needs a new secret")
    # both keys pinned: a run whose secret for either id has another fingerprint is refused
    pins = {old_id: _fingerprint_or_none(workspace, old_id), new_key_id: new_fp}
    for kid, fp in pins.items():
        if fp and not keys_table.get(kid, {}).get("fingerprint"):
            keys_table.setdefault(kid, {})["fingerprint"] = fp
    if keys_table:
        raw["keys"] = keys_table
    _write_config(workspace.root, raw)
    return load_workspace(workspace.root)


def _fingerprint_or_none(workspace: Workspace, key_id: str) -> str | None:
    try:
        return workspace.fingerprint_of(key_id)
    except (SecretError, WorkspaceError):
        return None


def retire_key(root: str | Path, key_id: str) -> Workspace:
    """End a rotation's overlap: drop `key_id` from `previous_key_ids` (and `[keys.<id>]`).

    Encoded drops under its fingerprint are refused from then on. The key file and env var
    are left for the analyst to delete (docs/keys.md, "Rotation").

    Raises:
        WorkspaceError: `key_id` is not a previous key (the current key cannot be retired).
    """
    workspace = load_workspace(root)
    if key_id not in workspace.previous_key_ids:
        what = "the current key; rotate first" if key_id == workspace.key_id else \
            "not a previous key"
        raise WorkspaceError(f"key id '{key_id}' is {what} (previous keys: "
                             f"{', '.join(workspace.previous_key_ids) or 'none'})")
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in workspace.raw.items()}
    remaining = [k for k in workspace.previous_key_ids if k != key_id]
    if remaining:
        raw["workspace"]["previous_key_ids"] = remaining
    else:
        raw["workspace"].pop("previous_key_ids", None)
    keys_table = {k: dict(v) for k, v in raw.get("keys", {}).items() if k != key_id}
    if keys_table:
        raw["keys"] = keys_table
    else:
        raw.pop("keys", None)
    _write_config(workspace.root, raw)
    return load_workspace(workspace.root)
