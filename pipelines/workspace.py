"""Workspace layout and configuration (`pathlink.toml`).

A workspace is a folder::

    pathlink.toml                      partners, key id, paths, thresholds
    landing/<partner_id>/<YYYY-MM>/<dataset>.<csv|xlsx|parquet>
    state/                             restricted: state.duckdb, quarantine/, reports/
    secrets/<key_id>.key               shared secret (0600) unless supplied by environment
    published/pathlink.duckdb          the evaluators' de-identified file
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets as _secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from keys import SharedSecret, env_var_name, generate_secret, load_secret, write_secret_file

CONFIG_NAME = "pathlink.toml"
PARTNER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,62}$")


class WorkspaceError(Exception):
    """A workspace is missing, malformed, or asked to do something it cannot."""


@dataclass(frozen=True)
class PartnerConfig:
    """One registered partner and how to read its drops."""

    partner_id: str
    name: str = ""
    age_min: int | None = None
    age_max: int | None = None
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def age_range(self) -> tuple[int, int] | None:
        if self.age_min is None or self.age_max is None:
            return None
        return (self.age_min, self.age_max)


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
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

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
        return self.root / "published" / "pathlink.duckdb"

    def load_secret(self) -> SharedSecret:
        """Load the shared secret by key id.

        From a Prefect Secret block when `[workspace] prefect_secret_block` names one (the value
        is the urlsafe base64 of the 32-byte secret); otherwise the environment variable
        `PATHLINK_SECRET_<KEY_ID>`, then `<key_dir>/<key_id>.key`.
        """
        block = self.raw.get("workspace", {}).get("prefect_secret_block")
        if block:
            return _secret_from_prefect_block(self.key_id, block)
        return load_secret(self.key_id, key_dir=self.key_dir)

    def expected_fingerprint(self) -> str:
        """The shared key's public fingerprint: from the config (`[workspace] key_fingerprint`,
        for a hub that holds no secret because every partner encodes) or from the secret."""
        configured = self.raw.get("workspace", {}).get("key_fingerprint")
        return configured or self.load_secret().fingerprint

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
    partners = {}
    for partner_id, spec in sorted(raw.get("partners", {}).items()):
        _check_partner_id(partner_id)
        partners[partner_id] = PartnerConfig(
            partner_id=partner_id,
            name=spec.get("name", ""),
            age_min=spec.get("age_min"),
            age_max=spec.get("age_max"),
            columns=dict(spec.get("columns", {})),
            values={k: dict(v) for k, v in spec.get("values", {}).items()},
        )
    return Workspace(
        root=root,
        name=ws.get("name", root.name),
        key_id=ws.get("key_id", "pathlink"),
        key_dir=key_dir,
        partners=partners,
        max_quarantine_share=float(thresholds.get("max_quarantine_share", 0.5)),
        small_cell_threshold=int(thresholds.get("small_cell", 10)),
        task_runner=runner.get("kind", "default"),
        dask_address=runner.get("address"),
        dask_workers=int(runner.get("workers", 2)),
        raw=raw,
    )


def _write_config(root: Path, raw: dict[str, Any]) -> None:
    path = root / CONFIG_NAME
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_bytes(tomli_w.dumps(raw).encode())
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
        "runner": {"kind": "default"},
        "partners": {},
    }
    for partner_id in partners or []:
        _check_partner_id(partner_id)
        raw["partners"][partner_id] = dict(partner_profiles.get(partner_id, {}))
    for sub in ("landing", "published"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("state", "secrets"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(root / sub, 0o700)
    for partner_id in raw["partners"]:
        (root / "landing" / partner_id).mkdir(exist_ok=True)
    if not os.environ.get(env_var_name(key_id)):
        key_file = root / "secrets" / f"{key_id}.key"
        if not key_file.exists():
            write_secret_file(key_file, generate_secret(), key_id=key_id)
    _write_config(root, raw)
    return load_workspace(root)


def add_partner(root: str | Path, partner_id: str, *, name: str = "") -> Workspace:
    """Register a partner in the workspace config and create its landing folder."""
    workspace = load_workspace(root)
    _check_partner_id(partner_id)
    raw = dict(workspace.raw)
    raw.setdefault("partners", {})
    if partner_id in raw["partners"]:
        raise WorkspaceError(f"partner '{partner_id}' is already registered")
    raw["partners"][partner_id] = {"name": name} if name else {}
    (workspace.landing / partner_id).mkdir(parents=True, exist_ok=True)
    _write_config(workspace.root, raw)
    return load_workspace(workspace.root)
