"""What every `pathlink` command shares: the console, the workspace option, failing cleanly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

console = Console(stderr=True)
WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.")]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: <message>` on stderr and exit with `code` (our messages carry no PII)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
