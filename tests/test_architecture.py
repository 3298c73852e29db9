"""House rules that keep the layers apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _modules(package: str) -> list[str]:
    """Every module of a package, found on disk (so a new module is covered at once)."""
    return sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / package).rglob("*.py")
        if "migrations" not in p.parts and "cli" not in p.parts
    )


def _imported_after(modules: list[str]) -> set[str]:
    """Top-level packages in sys.modules after importing `modules` in a fresh interpreter."""
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(result.stdout.strip().split(","))


def test_core_libraries_do_not_import_the_cli_toolkits() -> None:
    modules = _modules("custody") + _modules("species_ref") + _modules("labels")
    assert "custody.dossier.render" in modules and "custody.handover" in modules
    assert _imported_after(modules) & {"typer", "rich", "click"} == set()


@pytest.mark.parametrize("package", ["species_ref", "labels"])
def test_libraries_import_no_application_code(package: str) -> None:
    assert _imported_after(_modules(package)) & {"custody", "typer", "rich", "click"} == set()


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


def test_cli_start_and_species_commands_import_no_database_layer() -> None:
    # `custody --help` and `custody identify` (without recording) start without
    # SQLAlchemy, SQLModel or reportlab: they are imported by the commands that use them.
    loaded = _imported_after(["custody.cli.main", "custody.species", "species_ref.identify"])
    assert loaded & {"sqlalchemy", "sqlmodel", "alembic", "reportlab"} == set()
