"""A whole case as a court receives it: one seized carton, four sub-samples with different
results, one analysis withdrawn, one item voided, one weight corrected. The dossier must say
exactly that, and still verify."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from custody.cli.main import app
from custody.species import bundled_data
from tests.conftest import CASE, World

# (sub-sample description, demo query, what the sample's finding must read)
SAMPLES = [
    ("fin clip A", "demo_Sphyrna_lewini_COI-5P", "Sphyrna lewini (species)"),
    ("fin clip B", "demo_Manis_pentadactyla_12S-V5", "Manis pentadactyla (species)"),
    ("fin clip C", "demo_Manis_pentadactyla_COI-5P", "no identification"),
    ("fin clip D", "demo_Panthera_tigris_COI-5P", "Panthera tigris (species)"),
]
WITHDRAWN_QUERY = "demo_Psittacus_erithacus_COI-5P"


def _ok(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def _queries(tmp_path: Path) -> dict[str, Path]:
    """Each demo query in a file of its own."""
    records = bundled_data("demo_queries.fasta").read_text().split(">")[1:]
    out = {}
    for record in records:
        name = record.split()[0]
        path = tmp_path / f"{name}.fasta"
        path.write_text(">" + record)
        out[name] = path
    return out


def _history(cli: CliRunner, item: str) -> list[dict[str, object]]:
    data = json.loads(_ok(cli, "history", item, "--json"))
    assert isinstance(data, list)
    return data


@pytest.fixture
def scenario(world: World, tmp_path: Path) -> dict[str, str]:
    cli = CliRunner()
    carton = world.item(
        description="Carton of dried shark fins", species="Sphyrna sp.", weight=3.2, unit="kg"
    )
    stray = world.item(description="Carton logged twice by mistake", species="Sphyrna sp.")
    world.hand_to_lab(carton)
    _ok(cli, "ref", "import", "demo", str(bundled_data("demo_library.fasta")))
    queries = _queries(tmp_path)
    samples = []
    for description, _query, _finding in SAMPLES:
        out = _ok(
            cli, "sample", carton, "--description", description,
            "--reason", "one fin per bundle", "--as", "wkamau",
        )  # fmt: skip
        samples.append(out.strip().split()[-1])
    assert samples == [f"{carton}.{n}" for n in range(1, 5)], samples
    mapping = tmp_path / "map.csv"
    mapping.write_text(
        "query,item\n"
        + "".join(f"{q},{s}\n" for (_d, q, _f), s in zip(SAMPLES, samples, strict=True))
    )
    files = [str(queries[q]) for _d, q, _f in SAMPLES]
    _ok(cli, "identify", *files, "--library", "demo", "--map", str(mapping), "--as", "wkamau")
    # A fifth analysis on sample D, recorded by mistake and withdrawn.
    _ok(
        cli, "identify", str(queries[WITHDRAWN_QUERY]), "--library", "demo",
        "--item", samples[3], "--as", "wkamau",
    )  # fmt: skip
    wrong = _history(cli, samples[3])[-1]
    assert wrong["type"] == "analyse"
    _ok(
        cli, "correct", str(wrong["id"]), "--reason", "query file of another case analysed",
        "--as", "wkamau",
    )  # fmt: skip
    seize = _history(cli, carton)[0]["id"]
    _ok(
        cli, "correct", str(seize), "--set", "weight=2.9", "--reason", "scale misread at seizure",
        "--as", "aotieno",
    )  # fmt: skip
    _ok(cli, "void", stray, "--reason", "duplicate entry of the carton", "--as", "aotieno")
    out = tmp_path / "dossier.pdf"
    _ok(cli, "dossier", "build", CASE, "-o", str(out), "--as", "pnjeri")
    return {
        "pdf": str(out),
        "carton": carton,
        "stray": stray,
        "withdrawn": str(wrong["id"]),
        "seize": str(seize),
        **{f"sample{n}": s for n, s in enumerate(samples, start=1)},
    }


def _pages(pdf: Path) -> list[str]:
    return [re.sub(r"\s+", " ", p.extract_text() or "") for p in PdfReader(str(pdf)).pages]


def _section(pages: list[str], start: str, end: str) -> str:
    text = " ".join(pages)
    # The contents page names every section too; read the body, after it.
    body = text[text.index("1. Summary of items and findings", text.index("Contents") + 40) :]
    return body[body.index(start) : body.index(end, body.index(start) + len(start))]


def test_the_dossier_says_what_happened_and_verifies(scenario: dict[str, str]) -> None:
    pdf = Path(scenario["pdf"])
    pages = _pages(pdf)
    text = " ".join(pages)
    carton, stray = scenario["carton"], scenario["stray"]
    summary = _section(pages, "1. Summary of items and findings", f"2. Item {carton}")
    # Each sample's own finding on the carton's row; they disagree, and the summary says so.
    row = summary[summary.index(carton) : summary.index(scenario["sample1"])]
    for n, (_d, _q, finding) in enumerate(SAMPLES, start=1):
        assert f"1.{n}: {finding}" in row, (n, row)
    assert "The samples disagree: no finding for the item as a whole." in row
    # The withdrawn analysis is named as such, and its result is nobody's finding.
    withdrawn = scenario["withdrawn"]
    assert f"analysis event {withdrawn} WITHDRAWN" in row
    assert "Psittacus erithacus (species)" not in summary
    # CITES only for species called: never those of species that merely matched best.
    assert "Sphyrna lewini: App. II (listing of 2017-04-21)" in row
    assert "Manis culionensis" not in summary
    # Sub-sample C's row shows its own finding, not the carton's others.
    row_c = summary[summary.index(scenario["sample3"]) : summary.index(scenario["sample4"])]
    assert "1.3: no identification" in row_c and "Sphyrna" not in row_c
    assert "no species called" in row_c
    # The voided carton is listed as voided, with reason and event, and is no evidence.
    assert "Voided items (entered in error)" in summary
    assert "duplicate entry of the carton" in summary
    assert f"Item {stray}" not in text
    assert summary.count(stray) == 1
    # The corrected weight is shown, with the original, the correcting event and why.
    item = _section(pages, f"2. Item {carton}", f"3. Item {scenario['sample1']}")
    assert "2.9 kg (corrected; see below)" in item and "Corrected particulars" in item
    assert "weight 2.9 3.2" in item and "scale misread at seizure" in item
    assert "sets weight to 2.9" in item  # the timeline keeps both
    # The withdrawn analysis in sample D's section and in Appendix B.
    section_d = _section(pages, f"Item {scenario['sample4']} ", "Analyst and authoriser")
    assert f"Species identification (event {withdrawn}): {WITHDRAWN_QUERY} (WITHDRAWN)" in (
        section_d
    )
    assert f"WITHDRAWN by event {int(withdrawn) + 1}" in section_d
    assert "Reason: query file of another case analysed." in section_d
    assert "no longer counts as a finding" in section_d
    assert f"Event {withdrawn}, item {scenario['sample4']}: {WITHDRAWN_QUERY} (WITHDRAWN)" in text
    # Sub-samples say where they came from, not the carton's seizure as their own.
    section_a = _section(pages, f"3. Item {scenario['sample1']}", f"4. Item {scenario['sample2']}")
    assert f"Taken from {carton} on" in section_a and "Seizing officer" not in section_a
    # Error rates and limitations once, for the one library version, and true for it.
    assert text.count("Mitochondrial and plastid markers") == 1
    assert "This library version was not validated under rule 'default'" in text
    assert "The error rates quoted were measured" not in text
    # A decision rule in words; its settings in the appendix.
    assert "and the library checks passed" in text and "discount conserved errors True" not in text
    # The rule's settings once, in Appendix B, whatever the number of analyses under it.
    assert text.count("Decision rule 'default' as recorded") == 1
    assert text.count("Decision rule: 'default', settings in B.1.") == len(SAMPLES) + 1
    check = _ok(CliRunner(), "dossier", "verify", str(pdf))
    assert check.startswith("VALID"), check


def test_pdftotext_reads_the_same_findings(scenario: dict[str, str]) -> None:
    """What a reader's tool extracts, not only pypdf: pdftotext when it is installed."""
    try:
        raw = subprocess.run(
            ["pdftotext", "-layout", scenario["pdf"], "-"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except FileNotFoundError:
        pytest.skip("pdftotext is not installed")
    text = re.sub(r"\s+", " ", raw)
    assert "WITHDRAWN" in text and "Voided items (entered in error)" in text
    assert "2.9 kg" in text and "Panthera tigris (species)" in text
