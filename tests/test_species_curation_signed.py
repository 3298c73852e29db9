"""Curation is a signed act: the curating actor signs the new version's manifest, which
lists every decision, and a version changed afterwards is a finding."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from custody.cli.main import app
from custody.species import bundled_data
from tests.conftest import World

DECISIONS = """
[[exclude]]
record = "AY194403_COI-3P"
why = "misidentified"
reviewer = "Dr Wanjiru Kamau"
reason = "classifies to Amazona barbadensis against the rest of the library"
source = "ref conflicts demo"
"""


def test_curated_version_is_signed_by_its_curator(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    library = str(bundled_data("demo_library.fasta"))
    imported = runner.invoke(app, ["ref", "import", "demo", library, "--as", "wkamau"])
    assert imported.exit_code == 0, imported.output
    decisions = tmp_path / "decisions.toml"
    decisions.write_text(DECISIONS)
    curated = runner.invoke(
        app, ["ref", "curate", "demo", "--decisions", str(decisions), "--as", "wkamau"]
    )
    assert curated.exit_code == 0, curated.output
    assert "demo version 2" in curated.stdout and "1 records excluded" in curated.stdout
    shown = runner.invoke(app, ["ref", "show", "demo"])
    assert shown.exit_code == 0, shown.output
    assert "manifest signed by wkamau" in shown.stdout
    assert "curated from version 1 with decisions.toml" in shown.stdout
    unknown = runner.invoke(
        app, ["ref", "curate", "demo", "--decisions", str(decisions), "--as", "ghost"]
    )
    assert unknown.exit_code == 1 and "Actor 'ghost' does not exist" in unknown.stderr
