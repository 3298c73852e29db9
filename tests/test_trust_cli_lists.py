"""`--trust` may be repeated: the entries of every file given are trusted together."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from custody.cli.main import app
from custody.demo import run_demo


def test_repeated_trust_files_are_combined(tmp_path: Path) -> None:
    demo = run_demo(tmp_path / "demo")
    pdf = demo.folder / "nmk" / "dossier-NMK.pdf"
    kws, nmk = demo.folder / "trust-KWS.json", demo.folder / "trust-NMK.json"
    runner = CliRunner()
    both = runner.invoke(
        app, ["dossier", "verify", str(pdf), "--trust", str(kws), "--trust", str(nmk)]
    )
    assert both.exit_code == 0 and both.stdout.startswith("TRUSTED"), both.output
    alone = runner.invoke(app, ["dossier", "verify", str(pdf), "--trust", str(nmk)])
    assert alone.exit_code == 1 and alone.stdout.startswith("NOT TRUSTED")
    assert "'aotieno'" in alone.stdout
