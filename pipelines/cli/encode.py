"""``pathlink encode``: encode a participant extract on the partner's machine.

Only the encoded Parquet (tokens, Bloom filters, birth year, sex, zip3, partner record ids)
leaves the partner; the report names rows, fields and rules, never values. The main app calls
``register(app)``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from keys import (
    KeyMismatchError,
    SecretError,
    SharedSecret,
    key_file_path,
    load_secret,
    read_key_file_info,
)
from keys.store import env_var_name
from pipelines.cli._common import fail


def encode(
    file: Annotated[Path, typer.Argument(help="The extract to encode (CSV, XLSX or Parquet).")],
    partner: Annotated[str, typer.Option("--partner", help="Your partner id.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Encoded Parquet to write.")],
    key_id: Annotated[str | None, typer.Option(
        "--key-id", help="Shared key id; read from env PATHLINK_SECRET_<ID> or --key-dir "
                         "(default with --workspace: its current key).")] = None,
    key_dir: Annotated[Path | None, typer.Option(
        "--key-dir", help="Directory holding <key-id>.key.")] = None,
    expect_fingerprint: Annotated[str | None, typer.Option(
        "--fingerprint", help="The key fingerprint the hub gave you: refuse any other "
                              "secret.")] = None,
    workspace: Annotated[Path | None, typer.Option(
        "--workspace", "-w", help="Encode at the hub: its key, pinned fingerprint and "
                                  "key directory.")] = None,
    dataset: Annotated[str, typer.Option(help="Dataset (only participants).")] = "participants",
    period: Annotated[str | None, typer.Option(help="Reporting period YYYY-MM.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    map_file: Annotated[Path | None, typer.Option(
        "--map", help="TOML with your [partners.<id>] settings (column map, codes, sheet), "
                      "as in the hub's pathlink.toml.")] = None,
) -> None:
    """Validate, normalize and encode an extract; write only tokens and Bloom filters.

    Headers are read as at the hub (names, aliases, and your map with --map)."""
    from pipelines import ingest
    from pipelines.ingest import encoded as encoded_drops

    secret = _pinned_secret(key_id, key_dir, expect_fingerprint, workspace)
    if out.exists() and not overwrite:
        fail(f"{out} already exists; pass --overwrite to replace it", code=2)
    partner_config = None
    if map_file is not None:
        from pipelines.workspace import WorkspaceError, partner_settings

        try:
            partner_config = partner_settings(map_file, partner)
        except WorkspaceError as exc:
            fail(str(exc), code=2)
    try:
        drop = encoded_drops.encode_file(file, partner_id=partner, secret=secret, period=period,
                                         as_of=date.today(), dataset=dataset,
                                         partner_config=partner_config)
    except ingest.FileRejected as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc), code=2)
    typer.echo(ingest.render_check_report(drop.report))
    if not drop.accepted:
        fail(f"{drop.report.file} was rejected; nothing written")
    written = encoded_drops.write_encoded(drop, out, overwrite=overwrite)
    typer.echo(f"wrote {written}: {drop.counts['accepted']} encoded rows "
               f"({drop.counts['quarantined']} quarantined rows not written); "
               f"key {secret.key_id} fingerprint {drop.key_fingerprint}; "
               f"schema {drop.encoding_schema}")


def _pinned_secret(key_id: str | None, key_dir: Path | None, expected: str | None,
                   workspace: Path | None) -> SharedSecret:
    """The secret to encode under, refused before anything is written when its fingerprint
    is not the one pinned: by `--fingerprint`, by the workspace (`--workspace`), or by the
    key file in `--key-dir` when the secret came from the environment variable."""
    if workspace is not None:
        from pipelines.steps.keys import KeyPinError, check_keys
        from pipelines.workspace import WorkspaceError, load_workspace

        try:
            ws = load_workspace(workspace)
            key_id = key_id or ws.key_id
            check_keys(ws, pin_unpinned=False)
            secret = ws.load_secret(key_id)
        except (KeyPinError, WorkspaceError, KeyMismatchError) as exc:
            fail(str(exc))
        except SecretError as exc:
            fail(f"{exc} (set {env_var_name(key_id)} or put the key file in {ws.key_dir})",
                 code=2)
    else:
        if key_id is None:
            fail("--key-id is needed (or --workspace at the hub)", code=2)
        try:
            secret = load_secret(key_id, key_dir=key_dir)
        except SecretError as exc:
            fail(f"{exc} (set {env_var_name(key_id)} or pass --key-dir)", code=2)
        except ValueError as exc:
            fail(str(exc), code=2)
        if expected is None and key_dir is not None and secret.source.startswith("env:"):
            path = key_file_path(key_dir, key_id)
            if path.is_file():
                try:
                    recorded = read_key_file_info(path).fingerprint
                except SecretError:
                    recorded = None
                if recorded and recorded != secret.fingerprint:
                    fail(f"key '{key_id}': the secret loaded from {secret.source} has "
                         f"fingerprint {secret.fingerprint}, but {path} records {recorded}; "
                         "nothing was written. Unset the variable or fix it to the shared "
                         "secret")
    if expected is not None and secret.fingerprint != expected.strip().lower():
        fail(f"key '{secret.key_id}': the secret loaded from {secret.source} has fingerprint "
             f"{secret.fingerprint}, not {expected.strip().lower()} (--fingerprint); nothing "
             "was written. Confirm the key with the hub (`pathlink keys fingerprint`)")
    return secret


def register(app: typer.Typer) -> None:
    """Add the ``encode`` command to the main ``pathlink`` app."""
    app.command("encode")(encode)
