"""The `pathlink` command line: one console script, subcommands named for what a user does.

Each module registers its commands on the one app: `workspace` (init, partners, run, status,
crosswalk, check, serve), `keys`, `encode`, `release` (query, report, export, dictionary),
`review` (clerical review: list, show, decide, import, packet, sample, accuracy, thresholds)
and `demo` (demo, synth).
"""

from __future__ import annotations

import os

from pipelines.cli._clock import STARTED  # first: the command's start, before the heavy imports
from pipelines.cli._exit import arm as _arm_exit  # first: its atexit handler runs last

# Quiet third-party telemetry before they are imported (this machine may have no network).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Prefect's embedded server gets 20 s to start by default; a busy 2-core machine can need more
# (seen here: `pathlink demo` timing out while other jobs held both cores).
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

import sys
from collections.abc import Sequence

import typer

from pipelines.cli import demo, encode, keys, release, review, workspace

app = typer.Typer(
    name="pathlink",
    help="Privacy-preserving data sharing and record linkage for workforce partners.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for _module in (workspace, keys, encode, release, review, demo):
    _module.register(app)


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run one `pathlink` command and return its exit code.

    Every command runs under umask 077 (docs/operations.md, "File modes"). A user error (an
    unknown option, a missing or malformed argument) prints one line,
    `error: <what> (see `<command> --help`)`, and returns 2; an unexpected exception prints its
    type only (its text may hold personal data; `PATHLINK_DEBUG=1` shows the traceback) and
    returns 1. Never a traceback by default.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    # whatever a command writes is its owner's only, unless opened on purpose (restored after,
    # for a caller that runs commands in-process)
    umask = os.umask(0o077)
    try:
        return _run(args)
    finally:
        os.umask(umask)


def _run(args: list[str]) -> int:
    try:
        result = app(args=args, prog_name="pathlink", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 130
    except typer.TyperException as exc:  # typer's click errors: usage, bad parameter, ...
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            return 2  # the command's help is already printed
        message = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
        command = ctx.command_path if ctx is not None else "pathlink"
        code = int(getattr(exc, "exit_code", 1))
        typer.echo(f"error: {message}" + (f" (see `{command} --help`)" if code == 2 else ""),
                   err=True)
        return code
    except Exception as exc:
        if os.environ.get("PATHLINK_DEBUG"):
            raise
        typer.echo(f"error: unexpected {type(exc).__name__} (details withheld: they may hold "
                   "personal data; run again with PATHLINK_DEBUG=1 to see them)", err=True)
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point: run the command, then exit without tearing down every
    module (`pipelines.cli._exit`)."""
    code = run_cli()
    _arm_exit(code)
    sys.exit(code)


__all__ = ["STARTED", "app", "main", "run_cli"]
