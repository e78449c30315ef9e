"""The `pathlink` command line: one console script, subcommands named for what a user does.

Each module registers its commands on the one app: `workspace` (init, partners, run, status,
crosswalk, check, serve), `keys`, `encode`, `release` (query, report, export, dictionary) and
`demo` (demo, synth).
"""

from __future__ import annotations

import os

# Quiet third-party telemetry before they are imported (this machine may have no network).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

import typer

from pipelines.cli import demo, encode, keys, release, workspace

app = typer.Typer(
    name="pathlink",
    help="Privacy-preserving data sharing and record linkage for workforce partners.",
    no_args_is_help=True,
    add_completion=False,
)
for _module in (workspace, keys, encode, release, demo):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
