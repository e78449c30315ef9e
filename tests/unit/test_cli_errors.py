"""Every `pathlink` command, given a wrong argument, exits non-zero with one clear line on
stderr and never a traceback (issue 14, "Tables that fit")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from pipelines.cli import app, run_cli
from pipelines.workspace import init_workspace


def _commands() -> list[tuple[str, ...]]:
    """Every leaf command path of the app (`init`, `keys rotate`, ...)."""
    def walk(command, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        children = getattr(command, "commands", None)
        if not children:
            return [path]
        return [p for name, sub in sorted(children.items()) for p in walk(sub, (*path, name))]
    return walk(typer.main.get_command(app), ())


@pytest.fixture
def ws(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("PATHLINK_SECRET_CLI_TEST", "A" * 43)
    root = tmp_path / "ws"
    init_workspace(root, ["agency_a"], key_id="cli-test")
    return root


def wrong_arguments(ws: Path, tmp: Path) -> dict[tuple[str, ...], list[str]]:
    """One wrong argument (a value the command must refuse) for every command."""
    missing = str(tmp / "missing-workspace")
    (tmp / "plain.txt").write_text("a file, not a folder")
    return {
        ("init",): [str(ws)],                                        # already a workspace
        ("partners", "add"): ["Bad Id!", "--workspace", str(ws)],
        ("partners", "list"): ["--workspace", missing],
        ("run",): ["--workspace", str(ws), "--as-of", "2026-13-45"],
        ("crosswalk",): ["--workspace", missing],
        ("status",): ["--workspace", str(ws), "--format", "xml"],
        ("check",): [str(tmp / "nope.csv"), "--dataset", "participants"],
        ("feedback",): ["--workspace", str(ws), "--partner", "nobody", "-o", str(tmp / "f")],
        ("template",): ["people", "-o", str(tmp / "t")],
        ("serve",): ["--workspace", missing],
        ("encode",): [str(tmp / "x.csv"), "--partner", "a", "-o", str(tmp / "o.parquet"),
                      "--key-id", "no-such-key", "--key-dir", str(tmp)],
        ("query",): ["SELEC 1", "--workspace", str(ws), "--agreement", "none"],
        ("extract",): ["--workspace", str(ws), "--agreement", "no-such-agreement"],
        ("audit",): ["--workspace", missing],
        ("report",): ["--workspace", missing],
        ("export",): ["--workspace", str(ws), "--agreement", "a", "-o", str(tmp / "e"),
                      "--format", "xml"],
        ("dictionary",): ["-o", str(tmp / "plain.txt" / "d.md")],
        ("synth",): [str(tmp / "s"), "--periods", "2026-99"],
        ("demo",): ["--dir", str(ws)],                                # not a demo folder
        ("keys", "generate"): ["--key-dir", str(tmp), "--key-id", "bad id!"],
        ("keys", "fingerprint"): ["--key-dir", str(tmp), "--key-id", "no-such-key"],
        ("keys", "rewrap"): ["--key-dir", str(tmp), "--key-id", "k"],  # neither option
        ("keys", "rotate"): ["--workspace", missing, "--key-id", "k2"],
        ("keys", "retire"): ["--workspace", str(ws), "--key-id", "cli-test"],  # current key
        ("review", "list"): ["--workspace", str(ws), "--format", "xml"],
        ("review", "show"): ["not-a-pair", "--workspace", str(ws)],
        ("review", "decide"): ["R0123456789AB", "maybe", "--workspace", str(ws)],
        ("review", "import"): [str(tmp / "nope.csv"), "--workspace", str(ws)],
        ("review", "packet"): ["--workspace", str(ws), "--partner", "nobody", "-o",
                               str(tmp / "p.csv")],
        ("review", "sample"): ["--workspace", str(ws), "--size", "0"],
        ("review", "accuracy"): ["--workspace", str(ws), "--format", "xml"],
        ("review", "thresholds"): ["--workspace", missing],
        ("keys", "pin"): ["--workspace", str(ws), "--fingerprint", "0" * 32],  # pinned: other
    }


def _one_clear_line(capsys) -> str:
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert "Traceback" not in out.err + out.out
    assert len(lines) == 1, out.err
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def test_every_command_has_a_wrong_argument_case(ws: Path, tmp_path: Path) -> None:
    assert set(wrong_arguments(ws, tmp_path)) == set(_commands())


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_a_wrong_argument_gives_one_clear_line(command: tuple[str, ...], ws: Path,
                                               tmp_path: Path, capsys) -> None:
    args = wrong_arguments(ws, tmp_path)[command]
    code = run_cli([*command, *args])
    line = _one_clear_line(capsys)
    assert code != 0, line
    assert "unexpected" not in line, line  # a user error is named, not withheld


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_an_unknown_option_gives_one_clear_line(command: tuple[str, ...], capsys) -> None:
    assert run_cli([*command, "--no-such-option"]) == 2
    line = _one_clear_line(capsys)
    assert "--no-such-option" in line and "--help" in line


def test_an_unexpected_error_is_one_line_without_its_text(monkeypatch, capsys) -> None:
    from pipelines.cli import workspace as cli_workspace

    def boom(*args, **kwargs):
        raise RuntimeError("Qzxcanary personal value")

    monkeypatch.setattr(cli_workspace, "load_workspace", boom)
    assert run_cli(["partners", "list", "--workspace", "x"]) == 1
    line = _one_clear_line(capsys)
    assert "RuntimeError" in line and "Qzxcanary" not in line


@pytest.mark.slow  # a subprocess: the real console script
def test_the_console_script_prints_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "status", "--workspace",
                           str(tmp_path / "nope")], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("error: ")


def test_the_run_summary_fits_80_columns() -> None:
    from pipelines.cli.workspace import run_summary_text

    drop = {"partner_id": "a_partner_with_a_rather_long_identifier_name", "status": "accepted",
            "rel_path": "a_partner_with_a_rather_long_identifier_name/2026-10/participants.csv",
            "rows_read": 1234567, "rows_accepted": 1234000, "rows_quarantined": 567,
            "why": "reprocess_requested"}
    lines = run_summary_text({"run_id": "run-20261122-abcdef12",
                              "periods": [{"period": "2026-10", "drops": [drop]}]})
    assert max(len(line) for line in lines) <= 80
    assert "processed because reprocess_requested" in " ".join(" ".join(lines).split())


def test_a_sql_typo_in_query_is_one_line(ws: Path, capsys) -> None:
    import duckdb

    with (ws / "pathlink.toml").open("a") as f:     # a live published-tier agreement
        f.write('\n[agreements.eval]\npartners = ["*"]\ntier = "published"\n'
                'purpose = "typo test"\nexpires = 2099-12-31\ngrantee = "tester"\n')
    con = duckdb.connect(str(ws / "published" / "pathlink.duckdb"))
    con.execute("CREATE TABLE released_measures AS SELECT 1 AS n")
    con.execute("CREATE TABLE released_data_sent AS SELECT 'agency_a' AS partner_id")
    con.close()
    query = ["query", "--workspace", str(ws), "--agreement", "eval"]
    for sql in ("SELEC n FROM released_measures", "SELECT nn FROM released_measures"):
        assert run_cli([*query, sql]) == 1
        _one_clear_line(capsys)
    assert run_cli([*query, "SELECT n FROM released_measures"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "1"]
