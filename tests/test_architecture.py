"""House rules that keep the layers apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_core_libraries_do_not_import_the_cli_toolkits() -> None:
    code = (
        "import sys\n"
        "import custody.records, custody.events, custody.verify, custody.store\n"
        "import species_ref, labels\n"
        "for name in ('species_ref.reading', 'species_ref.library', 'species_ref.identify',\n"
        "             'labels.payload', 'labels.render', 'labels.qr', 'custody.dossier'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ModuleNotFoundError as exc:\n"
        "        if exc.name != name:\n"
        "            raise\n"
        "leaks = sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click'))\n"
        "print(','.join(leaks))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_libraries_never_import_custody() -> None:
    offenders = []
    for package in ("species_ref", "labels"):
        for path in (ROOT / package).rglob("*.py"):
            for line in path.read_text().splitlines():
                stripped = line.strip()
                if stripped.startswith(("import custody", "from custody")):
                    offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert offenders == []


def test_only_species_ref_imports_biopython() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for package in ("custody", "labels")
        for p in (ROOT / package).rglob("*.py")
        if any(
            line.strip().startswith(("import Bio", "from Bio"))
            for line in p.read_text().splitlines()
        )
    ]
    assert offenders == []
