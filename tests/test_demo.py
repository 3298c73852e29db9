"""`make demo` plays the two-agency hand-over and ends with a TRUSTED dossier."""

from __future__ import annotations

from pathlib import Path

from custody.demo import run_demo


def test_demo_hands_over_between_two_agencies(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo")
    crossing = [f for f in result.facts if "handed to NMK" in f]
    assert crossing and "TRUSTED with both roots, NOT TRUSTED with NMK's alone" in crossing[0]
    assert result.facts[-1].startswith("verification: INTACT")
    assert (tmp_path / "demo" / "nmk" / "dossier-NMK.pdf").is_file()
