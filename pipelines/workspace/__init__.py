"""The workspace: its folder layout, `pathlink.toml`, partners and keys by id."""

from __future__ import annotations

from pipelines.workspace.config import (
    CONFIG_NAME,
    PARTNER_ID_RE,
    QUASI_IDENTIFIERS,
    Agreement,
    IntakeLimits,
    NotifyConfig,
    PartnerConfig,
    QueryLimits,
    ReleaseSettings,
    RoiSettings,
    Workspace,
    WorkspaceError,
    add_partner,
    enforce_modes,
    init_workspace,
    load_workspace,
    partner_settings,
    pin_key,
    retire_key,
    rotate_key,
)

__all__ = [
    "CONFIG_NAME", "PARTNER_ID_RE", "QUASI_IDENTIFIERS", "Agreement", "IntakeLimits",
    "NotifyConfig", "PartnerConfig", "QueryLimits", "ReleaseSettings", "RoiSettings",
    "Workspace", "WorkspaceError", "add_partner", "enforce_modes", "init_workspace",
    "load_workspace", "partner_settings", "pin_key", "retire_key", "rotate_key",
]
