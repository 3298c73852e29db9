"""Species identification through custody: ref commands, identify, analyse events."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custody.cli.main import app
from custody.species import bundled_data
from tests.conftest import World

REQUIRED_KEYS = {
    "query",
    "level",
    "taxon",
    "candidates",
    "identity",
    "coverage",
    "flags",
    "library_version",
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def library(world: World, runner: CliRunner) -> str:
    result = runner.invoke(app, ["ref", "import", "demo", str(bundled_data("demo_library.fasta"))])
    assert result.exit_code == 0, result.output
    assert "version 1" in result.stdout and "sha256:" in result.stdout
    return "demo"


def _query(tmp_path: Path, prefix: str) -> Path:
    records = bundled_data("demo_queries.fasta").read_text().split(">")
    path = tmp_path / f"{prefix}.fasta"
    path.write_text("".join(">" + r for r in records if r.startswith(prefix)))
    return path


def test_identify_json_lines_and_analyse_event(
    world: World, runner: CliRunner, library: str, tmp_path: Path
) -> None:
    query = _query(tmp_path, "demo_Panthera_tigris")
    triage = runner.invoke(app, ["identify", str(query), "--library", library, "--json"])
    assert triage.exit_code == 0, triage.output
    (line,) = triage.stdout.strip().splitlines()
    result = json.loads(line)
    assert REQUIRED_KEYS <= result.keys()
    assert result["level"] == "species" and result["taxon"] == "Panthera tigris"
    assert any("reverse" in f for f in result["flags"])
    con = sqlite3.connect(world.db_path)
    assert con.execute("SELECT count(*) FROM events WHERE type = 'analyse'").fetchone()[0] == 0
    item = world.item(description="Tiger skin fragment")
    command = ["identify", str(query), "--library", library, "--item", item, "--as", "wkamau"]
    not_held = runner.invoke(app, command)
    assert not_held.exit_code == 1
    assert "held by 'aotieno', not 'wkamau'" in not_held.stderr
    assert "record 'analyse'" in not_held.stderr
    world.hand_to_lab(item)
    recorded = runner.invoke(app, command)
    assert recorded.exit_code == 0, recorded.output
    (data,) = con.execute("SELECT data FROM events WHERE type = 'analyse'").fetchone()
    stored = json.loads(data)
    assert stored["library_version"] == result["library_version"]
    assert stored["rule"]["name"] == "default" and "species_identity" in json.dumps(stored["rule"])
    assert stored["source"]["file_sha256"].startswith("sha256:")
    assert stored["query_sha256"] == result["query_sha256"]


def test_identify_refusals_change_nothing(
    world: World, runner: CliRunner, library: str, tmp_path: Path
) -> None:
    item = world.hand_to_lab(world.item())
    con = sqlite3.connect(world.db_path)
    before = con.execute("SELECT count(*) FROM events").fetchone()[0]
    protein = tmp_path / "protein.fasta"
    protein.write_text(">p\nMKVLAAGIVGLLLAQWERTYIPASDFGHKLCVNM\n")
    empty = tmp_path / "empty.fasta"
    empty.write_text("")
    query = _query(tmp_path, "demo_Sphyrna")
    cases = [
        (
            ["identify", str(protein), "--library", library, "--item", item, "--as", "wkamau"],
            "protein",
        ),
        (["identify", str(empty), "--library", library, "--item", item, "--as", "wkamau"], "empty"),
        (["identify", str(query), "--library", "nope", "--item", item, "--as", "wkamau"], "nope"),
        (["identify", str(query), "--library", library, "--rule", "bogus"], "bogus"),
        (
            ["identify", str(query), "--library", library, "--item", item, "--as", "aotieno"],
            "needs one of",
        ),
    ]
    for args, words in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith("error: ") and words.lower() in result.stderr.lower(), (
            args,
            result.stderr,
        )
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == before


def test_ref_list_show_export_validate(
    world: World, runner: CliRunner, library: str, tmp_path: Path
) -> None:
    listed = json.loads(runner.invoke(app, ["ref", "list", "--json"]).stdout)
    assert listed[0]["name"] == "demo" and listed[0]["record_count"] == 470
    validated = runner.invoke(app, ["ref", "validate", library, "--json"])
    assert validated.exit_code == 0, validated.output
    summary = json.loads(validated.stdout)["summary"]
    assert 0 <= summary["wrong_species_rate"] <= 1 and summary["n_present"] > 100
    shown = json.loads(runner.invoke(app, ["ref", "show", library, "--json"]).stdout)
    assert shown["integrity"] == "intact" and "default" in shown["validation"]
    out = tmp_path / "export.fasta"
    assert runner.invoke(app, ["ref", "export", library, "-o", str(out)]).exit_code == 0
    again = runner.invoke(app, ["ref", "import", "copy", str(out)])
    assert listed[0]["content_hash"] in again.stdout
    # Identifications now carry the measured rates.
    query = _query(tmp_path, "demo_Psittacus")
    result = json.loads(
        runner.invoke(app, ["identify", str(query), "--library", library, "--json"]).stdout
    )
    assert result["validation"]["summary"] == summary


def test_ref_import_bad_file_stores_nothing(
    world: World, runner: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.fasta"
    bad.write_text(">X1|Manis|COI-5P\nACGT\n>X2 environmental sample\nNNNNNNNNNN\n")
    result = runner.invoke(app, ["ref", "import", "broken", str(bad)])
    assert result.exit_code == 1 and "no usable" in result.stderr.lower()
    assert json.loads(runner.invoke(app, ["ref", "list", "--json"]).stdout) == []


def test_unknown_library_is_a_clear_error(world: World, runner: CliRunner, tmp_path: Path) -> None:
    for args in (
        ["ref", "validate", "nope"],
        ["ref", "show", "nope"],
        ["ref", "conflicts", "nope"],
        ["ref", "export", "nope", "-o", str(tmp_path / "x.fasta")],
    ):
        result = runner.invoke(app, args)
        assert (
            result.exit_code == 1
            and result.stderr.startswith("error: ")
            and "nope" in result.stderr
        ), (args, result.output)
    assert not (tmp_path / "x.fasta").exists()


def test_import_prepares_the_search_index_so_identify_builds_nothing(
    world: World, runner: CliRunner, library: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = next((world.store.references_dir / library / ".cache").glob("v*"))
    assert sorted(p.name.split("_")[0] for p in cache.glob("*_*")) == ["kmer", "species"]
    from species_ref.index import KmerIndex
    from species_ref.profile import LibraryProfile

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("identify rebuilt a cached structure")

    monkeypatch.setattr(KmerIndex, "build", classmethod(refuse))
    monkeypatch.setattr(LibraryProfile, "build", classmethod(refuse))
    query = _query(tmp_path, "demo_Panthera_tigris")
    result = runner.invoke(app, ["identify", str(query), "--library", library, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["taxon"] == "Panthera tigris"


def test_ambiguous_base_limit_for_references_is_an_import_option(
    world: World, runner: CliRunner, tmp_path: Path
) -> None:
    body = "ACGTTGCAAGTCCATGGACTTAGCCATGCAAGTTCCAGGATTACGTAGCATGCA" * 4
    clean = body[:200]
    with_ns = body[:194] + "NNNNNN"  # 3 % N
    refs = tmp_path / "refs.fasta"
    refs.write_text(
        f">A1|Manis javanica|COI-5P\n{clean}\n>A2|Manis culionensis|COI-5P\n{with_ns}\n"
    )
    strict = runner.invoke(app, ["ref", "import", "pangolins", str(refs)])
    assert strict.exit_code == 0, strict.output
    assert "1 sequences" in strict.stdout and "too many ambiguous bases" in strict.stdout
    loose = runner.invoke(app, ["ref", "import", "pangolins", str(refs), "--max-ambiguous", "5"])
    assert loose.exit_code == 0, loose.output
    assert "version 2" in loose.stdout and "2 sequences" in loose.stdout
    shown = json.loads(runner.invoke(app, ["ref", "show", "pangolins", "--json"]).stdout)
    assert shown["import_options"]["max_ambiguous"] == 0.05
    refused = runner.invoke(app, ["ref", "import", "pangolins", str(refs), "--max-ambiguous", "50"])
    assert refused.exit_code != 0 and "max-ambiguous" in refused.output


def test_ref_conflicts_lists_species_the_library_cannot_tell_apart(
    world: World, runner: CliRunner, tmp_path: Path
) -> None:
    imported = runner.invoke(
        app, ["ref", "import", "demo", str(bundled_data("demo_library.fasta"))]
    )
    assert "12 species pairs have references within 0.5 %" in imported.stdout
    assert "custody ref conflicts demo" in imported.stdout
    listed = runner.invoke(app, ["ref", "conflicts", "demo", "--json"])
    assert listed.exit_code == 0, listed.output
    pairs = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(pairs) == 12 and pairs == sorted(pairs, key=lambda p: p["distance"])
    cheetahs = next(p for p in pairs if p["species_a"] == "Acinonyx jubatus")
    assert cheetahs["species_b"] == "Acinonyx jubensis" and cheetahs["distance"] == 0.0
    assert cheetahs["kind"] == "not separated"
    assert any("Appendix I" in c for c in cheetahs["cites"])
    (suspect,) = [p for p in pairs if p["kind"] == "misidentified record"]
    assert suspect["suspect"] and suspect["suspect"] in suspect["explanation"]
    table = runner.invoke(app, ["ref", "conflicts", "demo", "--within", "0"])
    assert table.exit_code == 0 and "species pairs within 0.0 %" in table.stdout
    narrow = runner.invoke(app, ["ref", "conflicts", "demo", "--within", "0", "--json"])
    assert all(json.loads(line)["distance"] == 0 for line in narrow.stdout.splitlines())


def test_ref_show_lists_every_stored_validation(
    world: World, runner: CliRunner, library: str
) -> None:
    from custody.species import reference_store, validation_key
    from species_ref.profile import PROFILE_METHOD
    from species_ref.rules import get_rule

    refs = reference_store(world.store)
    for rule, rate in (("fixed-98.5", 0.5), ("conservative", 0.25), ("default", 0.75)):
        # The conservative one was made under revision 1 of its rule.
        revision = 1 if rule == "conservative" else get_rule(rule).revision
        summary = {"correct_species_rate": rate, "wrong_species_rate": 0.01, "n_present": 200}
        summary |= {"false_species_rate_absent": 0.02, "n_absent": 100}
        doc = {"rule": {"name": rule, "revision": revision}, "summary": summary}
        refs.attach(library, 1, validation_key(rule), doc | {"statistics_method": PROFILE_METHOD})
    shown = json.loads(runner.invoke(app, ["ref", "show", library, "--json"]).stdout)
    assert list(shown["validation"]) == ["default", "conservative", "fixed-98.5"]
    text = " ".join(runner.invoke(app, ["ref", "show", library], terminal_width=400).stdout.split())
    default = get_rule("default").revision
    assert (
        f"validation under rule 'default' (revision {default}): 75.0 % correct and 1.0 % wrong "
        "species calls on 200 queries of species in the library, 2.0 % species calls on 100 "
        "queries of species left out" in text
    )
    assert "validation under rule 'conservative' (revision 1): 25.0 % correct" in text
    assert "calls made now do not take error rates from it" in text
    assert "validation under rule 'fixed-98.5' (revision 1): 50.0 % correct" in text
    assert text.count("do not take error rates") == 1
    assert "correct_species_rate" not in text


def _two_samples(tmp_path: Path) -> Path:
    """Two carcass samples sequenced at the same marker, in one file."""
    (record,) = [r for r in _query(tmp_path, "demo_Sphyrna").read_text().split(">") if r][:1]
    body = record.split("\n", 1)[1]
    path = tmp_path / "two.fasta"
    path.write_text(f">fin_A\n{body}>fin_B\n{body}")
    return path


def test_several_samples_need_a_map_and_are_recorded_on_their_items(
    world: World, runner: CliRunner, library: str, tmp_path: Path
) -> None:
    two = _two_samples(tmp_path)
    a, b = world.hand_to_lab(world.item()), world.hand_to_lab(world.item())
    con = sqlite3.connect(world.db_path)
    refused = runner.invoke(
        app, ["identify", str(two), "--library", library, "--item", a, "--as", "wkamau"]
    )
    assert refused.exit_code == 1 and "--map queries.csv" in refused.stderr
    assert "fin_A, fin_B" in refused.stderr
    assert con.execute("SELECT count(*) FROM events WHERE type = 'analyse'").fetchone()[0] == 0
    mapping = tmp_path / "queries.csv"
    mapping.write_text(f"query,item\nfin_A,{a}\n")
    partial = runner.invoke(
        app, ["identify", str(two), "--library", library, "--map", str(mapping), "--as", "wkamau"]
    )
    assert partial.exit_code == 1 and "Query fin_B is not in the query map" in partial.stderr
    mapping.write_text(f"query,item\nfin_A,{a}\nfin_B,{b}\n")
    done = runner.invoke(
        app, ["identify", str(two), "--library", library, "--map", str(mapping), "--as", "wkamau"]
    )
    assert done.exit_code == 0, done.output
    rows = con.execute(
        "SELECT chain, json_extract(data, '$.query') FROM events WHERE type = 'analyse' ORDER BY id"
    ).fetchall()
    assert rows == [(a, "fin_A"), (b, "fin_B")]


def test_identify_without_recording_finds_libraries_as_the_store_does(
    world: World, runner: CliRunner, library: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from custody.cli.common import reference_home

    assert reference_home().references_dir == world.store.references_dir
    query = _query(tmp_path, "demo_Panthera_tigris")
    monkeypatch.setenv("CUSTODY_DB", str(tmp_path / "elsewhere" / "custody.db"))
    result = runner.invoke(app, ["identify", str(query), "--library", library, "--json"])
    assert result.exit_code == 1
    assert "No custody store at" in result.stderr and "custody init" in result.stderr


@pytest.mark.parametrize(
    ("name", "escaped"),
    [("Q\u009b31m\u202egnp.exe", ["\u009b", "\u202e"]), ("Q\x7f-del", ["\x7f"])],
)
def test_identify_json_escapes_terminal_controls_in_query_names(
    runner: CliRunner, library: str, tmp_path: Path, name: str, escaped: list[str]
) -> None:
    # A header naming the query with a C1 control and a right-to-left override
    # (or an ASCII DEL): the JSON line carries the exact name, but as escapes a
    # terminal cannot act on.
    sequence = bundled_data("demo_queries.fasta").read_text().split(">")[1].split("\n", 1)[1]
    query = tmp_path / "evil.fasta"
    query.write_bytes(f">{name}\n{sequence}".encode())
    run = runner.invoke(app, ["identify", str(query), "--library", library, "--json"])
    assert run.exit_code == 0, run.output
    for ch in escaped:
        assert ch not in run.stdout and f"\\u{ord(ch):04x}" in run.stdout
    assert json.loads(run.stdout)["query"] == name
