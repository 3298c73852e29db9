"""`custody demo`: play the demonstration case into a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from custody.cli.common import err, out, styled


def demo(
    out_dir: Path = typer.Option(
        Path("demo"), "--out", help="Folder to create the demo store and files in (replaced)."
    ),
) -> None:
    """Play a realistic case end to end into a fresh store (labels, species ID, dossier)."""
    from custody.demo import run_demo

    result = run_demo(out_dir, progress=lambda msg: err.print(styled(("demo:", "dim"), f" {msg}")))
    out.print(styled((f"Demo case {result.case_no}", "bold"), f" in {result.folder}"))
    out.print(f"  store      {result.db}")
    for name, path in result.files.items():
        out.print(f"  {name:10} {path}")
    for fact in result.facts:
        out.print(f"  {fact}")
    out.print(f"Try: custody --db {result.db} history {result.items[0]}")
    out.print(
        f"(the demo actors' keys are in {result.folder / 'home'}: set CUSTODY_HOME to it to record events)"
    )


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
