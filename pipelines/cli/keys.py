"""``pathlink keys``: generate, inspect and rewrap shared-secret files.

Commands print key ids, fingerprints and paths only, never key material or passphrases.
Passphrases are read from environment variables named on the command line, so they stay out
of shell history and process listings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from keys import (
    PASSPHRASE_ENV,
    SecretError,
    generate_secret,
    key_file_path,
    load_secret,
    read_key_file_info,
    rewrap_secret_file,
    write_secret_file,
)
from keys.store import env_var_name
from pipelines.cli._common import WorkspaceOpt, fail

app = typer.Typer(
    name="keys",
    help="Manage the shared linkage secret: generate key files, show fingerprints, rewrap.",
    no_args_is_help=True,
    add_completion=False,
)

KeyDir = Annotated[Path, typer.Option("--key-dir", help="Directory holding <key-id>.key files.")]
KeyId = Annotated[str, typer.Option("--key-id", help="Key id, e.g. pathlink-2025a.")]



def _passphrase_from_env(var: str | None, *, required: bool) -> str | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        if required:
            fail(f"environment variable {var} is not set or empty", code=2)
        return None
    return value


@app.command()
def generate(
    key_dir: KeyDir,
    key_id: KeyId,
    passphrase_env: Annotated[
        str | None,
        typer.Option(
            "--passphrase-env",
            metavar="VAR",
            help="Encrypt the file with the passphrase held in this environment variable.",
        ),
    ] = None,
) -> None:
    """Create a new random secret in KEY_DIR/KEY_ID.key (mode 0600); never overwrites."""
    passphrase = _passphrase_from_env(passphrase_env, required=True)
    try:
        path = key_file_path(key_dir, key_id)
        material = generate_secret()
        write_secret_file(path, material, key_id=key_id, passphrase=passphrase)
        info = read_key_file_info(path)
    except (ValueError, FileExistsError, SecretError) as exc:
        fail(str(exc))
    typer.echo(f"key_id: {info.key_id}")
    typer.echo(f"fingerprint: {info.fingerprint}")
    typer.echo(f"path: {path}")


@app.command()
def fingerprint(
    key_dir: KeyDir,
    key_id: KeyId,
    passphrase_env: Annotated[
        str,
        typer.Option(
            "--passphrase-env",
            metavar="VAR",
            help="Environment variable holding the passphrase of an encrypted file.",
        ),
    ] = PASSPHRASE_ENV,
) -> None:
    """Show the fingerprint of the key the pipeline would load (env var first, then file).

    An encrypted file without a passphrase shows its recorded fingerprint, marked unverified.
    """
    passphrase = _passphrase_from_env(passphrase_env, required=False)
    try:
        path = key_file_path(key_dir, key_id)
        if not os.environ.get(env_var_name(key_id)) and passphrase is None and path.exists():
            info = read_key_file_info(path)
            if info.encrypted:
                typer.echo(f"key_id: {info.key_id}")
                typer.echo(f"fingerprint: {info.fingerprint} (recorded; not verified)")
                typer.echo(f"source: file:{path}")
                return
        secret = load_secret(key_id, key_dir=key_dir, passphrase=passphrase)
    except (ValueError, SecretError) as exc:
        fail(str(exc))
    typer.echo(f"key_id: {secret.key_id}")
    typer.echo(f"fingerprint: {secret.fingerprint}")
    typer.echo(f"source: {secret.source}")


@app.command()
def rewrap(
    key_dir: KeyDir,
    key_id: KeyId,
    new_passphrase_env: Annotated[
        str | None,
        typer.Option(
            "--new-passphrase-env",
            metavar="VAR",
            help="Environment variable holding the new passphrase.",
        ),
    ] = None,
    old_passphrase_env: Annotated[
        str,
        typer.Option(
            "--old-passphrase-env",
            metavar="VAR",
            help="Environment variable holding the current passphrase (if encrypted).",
        ),
    ] = PASSPHRASE_ENV,
    no_passphrase: Annotated[
        bool,
        typer.Option("--no-passphrase", help="Store the secret unencrypted (still mode 0600)."),
    ] = False,
) -> None:
    """Add, change or remove the passphrase of a key file; the secret itself is unchanged."""
    if no_passphrase == (new_passphrase_env is not None):
        fail("give exactly one of --new-passphrase-env VAR or --no-passphrase", code=2)
    new_passphrase = _passphrase_from_env(new_passphrase_env, required=True)
    old_passphrase = _passphrase_from_env(old_passphrase_env, required=False)
    try:
        path = key_file_path(key_dir, key_id)
        secret = rewrap_secret_file(
            path, old_passphrase=old_passphrase, new_passphrase=new_passphrase, key_id=key_id
        )
    except (ValueError, SecretError) as exc:
        fail(str(exc))
    typer.echo(f"key_id: {secret.key_id}")
    typer.echo(f"fingerprint: {secret.fingerprint}")
    typer.echo(f"path: {path}")
    typer.echo(f"encrypted: {'yes' if new_passphrase else 'no'}")




@app.command()
def rotate(
    workspace: WorkspaceOpt,
    key_id: Annotated[str, typer.Option("--key-id", help="The NEW key id, e.g. hub-2026a.")],
    passphrase_env: Annotated[
        str | None,
        typer.Option("--passphrase-env", metavar="VAR",
                     help="Encrypt a newly generated key file with this variable's passphrase."),
    ] = None,
    key_fingerprint: Annotated[
        str | None,
        typer.Option("--fingerprint",
                     help="The new key's fingerprint, for a hub that holds no secret."),
    ] = None,
    prefect_secret_block: Annotated[
        str | None,
        typer.Option("--prefect-secret-block", help="Load the new key from this Prefect "
                     "Secret block."),
    ] = None,
) -> None:
    """Start a key rotation: KEY_ID becomes the current key, the old key a previous one.

    Drops encoded under the previous key are still accepted until `pathlink keys retire`.
    The new secret is taken from PATHLINK_SECRET_<KEY_ID>, an existing key file, a Prefect
    Secret block, or generated into the workspace's key directory (never overwritten).
    """
    from pipelines.workspace import WorkspaceError, rotate_key

    passphrase = _passphrase_from_env(passphrase_env, required=True)
    try:
        ws = rotate_key(workspace, key_id, fingerprint=key_fingerprint,
                        prefect_secret_block=prefect_secret_block, passphrase=passphrase)
    except (WorkspaceError, SecretError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"current key: {ws.key_id}")
    typer.echo(f"previous keys (still accepted): {', '.join(ws.previous_key_ids)}")
    for kid in ws.key_ids:
        try:
            typer.echo(f"fingerprint {kid}: {ws.fingerprint_of(kid)}")
        except (WorkspaceError, SecretError):
            typer.echo(f"fingerprint {kid}: (not loadable here; see `pathlink keys fingerprint`)")
    typer.echo("next: send the new key to every partner, confirm its fingerprint, and have "
               "each encode one full overlap extract under both keys; then `pathlink keys "
               "retire` (docs/keys.md, Rotation)")


@app.command()
def retire(
    workspace: WorkspaceOpt,
    key_id: Annotated[str, typer.Option("--key-id", help="The previous key id to retire.")],
    force: Annotated[bool, typer.Option(
        "--force", help="Retire even though the overlap is not bridged for every partner "
                        "(says what stays unlinked).")] = False,
) -> None:
    """End a rotation's overlap: drops encoded under KEY_ID are refused from now on.

    Refused until every partner with records under KEY_ID has had an overlap period processed
    under both keys, bridged and published (docs/keys.md, Rotation); --force overrides.
    """
    from pipelines.steps.keys import retire_check
    from pipelines.workspace import WorkspaceError, load_workspace, retire_key

    try:
        check = retire_check(load_workspace(workspace), key_id)
        if not check.allowed and not force:
            fail(f"not retiring key '{key_id}': {check.reason}; retiring now would leave "
                 f"{check.left_behind()}. Pass --force to retire anyway")
        ws = retire_key(workspace, key_id)
    except WorkspaceError as exc:
        fail(str(exc))
    if not check.allowed:
        typer.echo(f"warning: retired key '{key_id}' by --force: {check.reason}", err=True)
    typer.echo(f"retired key {key_id}; current key: {ws.key_id}; previous keys: "
               f"{', '.join(ws.previous_key_ids) or 'none'}")
    typer.echo(f"left unlinked: {check.left_behind()}")
    typer.echo(f"now delete {key_file_path(ws.key_dir, key_id)} and {env_var_name(key_id)} "
               "at the hub (if present) and ask partners to delete their copies")


@app.command()
def pin(
    workspace: WorkspaceOpt,
    key_id: Annotated[str | None, typer.Option(
        "--key-id", help="The key id to pin (default: the current key).")] = None,
    key_fingerprint: Annotated[str | None, typer.Option(
        "--fingerprint", help="The fingerprint to pin (default: the loaded secret's).")] = None,
) -> None:
    """Record the fingerprint a key id's secret must have; runs under another are refused.

    `init` and `keys rotate` pin keys themselves; this is for a workspace made before keys
    were pinned, or a hub told a key's fingerprint by whoever generated it.
    """
    from pipelines.workspace import WorkspaceError, load_workspace, pin_key

    try:
        ws = load_workspace(workspace)
        kid = key_id or ws.key_id
        if kid not in ws.key_ids:
            raise WorkspaceError(f"key id '{kid}' is not configured in {ws.config_path}")
        before = ws.pinned_fingerprint(kid)
        if key_fingerprint is None:
            loaded = ws.load_secret(kid)  # refused here when it disagrees with a pin
            key_fingerprint, source = loaded.fingerprint, loaded.source
        else:
            source = "--fingerprint"
        if before is not None and before != key_fingerprint.lower():
            raise WorkspaceError(
                f"key '{kid}' is pinned to {before}, not {key_fingerprint.lower()}; a new "
                "secret needs a new key id (`pathlink keys rotate`)")
        pin_key(workspace, kid, key_fingerprint)
    except (WorkspaceError, SecretError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"key {kid}: pinned fingerprint {key_fingerprint.lower()} (from {source})"
               + ("; already pinned" if before else ""))


def register(main: typer.Typer) -> None:
    """Add the ``keys`` command group to the main ``pathlink`` app."""
    main.add_typer(app, name="keys")
