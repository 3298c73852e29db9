"""The measured error rate of a call, from the validation of its library version."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from species_ref.errorrate import CallCells, clopper_pearson, conditions, error_rate_of, is_wrong
from species_ref.vocab import DecisionLevel


@dataclass(frozen=True)
class Call:
    level: DecisionLevel
    identity: float | None
    next_species_distance: float | None


def test_exact_interval_matches_the_textbook_values() -> None:
    low, high = clopper_pearson(2, 214)
    assert round(100 * low, 1) == 0.1 and round(100 * high, 1) == 3.3
    assert clopper_pearson(0, 10)[0] == 0.0 and round(clopper_pearson(0, 10)[1], 3) == 0.308
    assert clopper_pearson(5, 5)[1] == 1.0


def test_statement_counts_validation_calls_under_the_same_conditions() -> None:
    cells = CallCells.empty()
    key = conditions(
        marker="COI-5P", query_length=650, identity=99.8, gap=3.5, level=DecisionLevel.SPECIES
    )
    for i in range(214):
        cells.add(key, wrong=i < 2)
    validation = {"call_cells": cells.to_dict()}
    call = Call(DecisionLevel.SPECIES, 99.9, 4.0)
    rate = error_rate_of(validation, call, query_length=640, marker="COI-5P")
    assert (rate.count, rate.wrong) == (214, 2)
    assert rate.statement.startswith("Of 214 validation calls like this one")
    assert "2 were wrong: 0.9 %, 95 % CI 0.1-3.3 %." in rate.statement
    assert rate.to_dict()["ci_high"] == pytest.approx(0.0334, abs=1e-4)
    # Another identity bin: counted over the marker and length class, and said so.
    wider = error_rate_of(
        validation, Call(DecisionLevel.SPECIES, 98.7, 1.2), query_length=640, marker="COI-5P"
    )
    assert wider.count == 214
    # The conditions named are those counted; the call's own bins only as not found.
    assert wider.statement.startswith(
        "Of 214 validation calls with this call's marker, query length and level (species "
        "calls on COI-5P, queries 500 bp or more, any identity and gap) on species in the "
        "library, 2 were wrong: 0.9 %, 95 % CI 0.1-3.3 %."
    )
    assert wider.statement.endswith(
        " No validation call on a species in the library had this call's identity and gap "
        "(identity 98-99 %, next species 1-3 % away)."
    )
    assert wider.statement.count("identity 98-99 %") == 1
    assert (
        wider.conditions == "species calls on COI-5P, queries 500 bp or more, any identity and gap"
    )
    other = error_rate_of(validation, call, query_length=120, marker="COI-5P")
    assert other.count == 0 and "unknown" in other.statement
    assert "(species calls on COI-5P, queries under 150 bp, any identity and gap)" in (
        other.statement
    )


def test_false_calls_on_held_out_species_are_stated_beside_the_rate() -> None:
    cells = CallCells.empty()
    key = conditions(
        marker="cytb", query_length=1100, identity=100.0, gap=5.0, level=DecisionLevel.SPECIES
    )
    for _ in range(20):
        cells.add(key, wrong=False)
    for _ in range(3):
        cells.add(key, wrong=True, absent=True)
    validation = {"call_cells": cells.to_dict(), "absent": {"overall": {"n": 400}}}
    rate = error_rate_of(
        validation, Call(DecisionLevel.SPECIES, 100.0, 6.0), query_length=1140, marker="cytb"
    )
    assert (rate.count, rate.wrong, rate.false_calls, rate.absent_queries) == (20, 0, 3, 400)
    assert "0 were wrong: 0.0 %, 95 % CI 0.0-16.8 %." in rate.statement
    assert (
        "received 3 such calls in the same validation (of 400 held-out queries); each was a "
        "false call, since the query's species was not in the library." in rate.statement
    )
    # A genus call on a held-out species can be right: its genus is still in the library.
    genus_key = conditions(
        marker="cytb", query_length=1100, identity=97.0, gap=5.0, level=DecisionLevel.GENUS
    )
    cells.add(genus_key, wrong=False)
    cells.add(genus_key, wrong=False, absent=True)
    validation = {"call_cells": cells.to_dict(), "absent": {"overall": {"n": 400}}}
    genus = error_rate_of(
        validation, Call(DecisionLevel.GENUS, 97.0, 6.0), query_length=1140, marker="cytb"
    )
    assert "false call" not in genus.statement
    assert (
        "received 1 such call in the same validation (of 400 held-out queries); their species "
        "was not in the library, but a species of its genus was, so a genus call on them is "
        "right when it names that genus." in genus.statement
    )


def test_unvalidated_library_is_said_plainly() -> None:
    call = Call(DecisionLevel.SPECIES, 99.9, 4.0)
    rate = error_rate_of(None, call, query_length=650, marker="COI-5P")
    assert not rate.validated and rate.rate is None
    assert "has not been validated" in rate.statement
    old = error_rate_of({"summary": {}}, call, query_length=650, marker="COI-5P")
    assert "before call error rates were kept" in old.statement
    none = error_rate_of(None, Call(DecisionLevel.NONE, None, None), query_length=650, marker=None)
    assert "No identification" in none.statement


def test_wrong_by_level() -> None:
    assert is_wrong(
        level=DecisionLevel.SPECIES, taxon="A b", truth="A b", candidates=[], absent=True
    )
    assert not is_wrong(
        level=DecisionLevel.SPECIES, taxon="A b", truth="A b", candidates=[], absent=False
    )
    assert is_wrong(level=DecisionLevel.GENUS, taxon="C", truth="A b", candidates=[], absent=False)
    assert not is_wrong(
        level=DecisionLevel.AMBIGUOUS,
        taxon=None,
        truth="A b",
        candidates=["A b", "A c"],
        absent=False,
    )


def test_identify_prints_and_stores_the_error_rate(tmp_path, world) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from custody.cli.main import app
    from custody.species import bundled_data

    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["ref", "import", "demo", str(bundled_data("demo_library.fasta"))]
        ).exit_code
        == 0
    )
    records = bundled_data("demo_queries.fasta").read_text().split(">")
    query = tmp_path / "q.fasta"
    query.write_text("".join(">" + r for r in records if r.startswith("demo_Panthera_tigris")))
    before = runner.invoke(app, ["identify", str(query), "--library", "demo", "--json"])
    stored = json.loads(before.stdout)
    assert stored["error_rate"]["validated"] is False
    assert "has not been validated" in stored["error_rate"]["statement"]
    assert runner.invoke(app, ["ref", "validate", "demo"]).exit_code == 0
    after = runner.invoke(app, ["identify", str(query), "--library", "demo"])
    assert after.exit_code == 0, after.output
    assert "error rate: Of " in after.stdout and "95 % CI" in after.stdout
    # A query that identifies nothing says why no error rate applies, as the dossier does.
    nothing = tmp_path / "nothing.fasta"
    nothing.write_text(">nothing\n" + "ACGTTGCAAGCTTCGA" * 25 + "\n")
    none = runner.invoke(app, ["identify", str(nothing), "--library", "demo"])
    assert none.exit_code == 0, none.output
    assert "error rate: No identification was made, so no error rate applies." in none.stdout
    data = json.loads(
        runner.invoke(app, ["identify", str(query), "--library", "demo", "--json"]).stdout
    )
    assert {"count", "wrong", "rate", "ci_low", "ci_high", "statement"} <= data["error_rate"].keys()
    assert data["error_rate"]["count"] > 0


def _tiger_error_rate_with(world, tmp_path, validation: dict) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The error rate of a tiger query's call with `validation` stored for the demo library."""
    import json

    from typer.testing import CliRunner

    from custody.cli.main import app
    from custody.species import bundled_data, reference_store, validation_key

    runner = CliRunner()
    lib = bundled_data("demo_library.fasta")
    assert runner.invoke(app, ["ref", "import", "demo", str(lib)]).exit_code == 0
    cells = {"present|COI-5P|500 bp or more|99.5 % or more|3 % or more|species": [50, 0]}
    reference_store(world.store).attach(
        "demo", 1, validation_key("default"), {**validation, "summary": {}, "call_cells": cells}
    )
    records = bundled_data("demo_queries.fasta").read_text().split(">")
    query = tmp_path / "q.fasta"
    query.write_text("".join(">" + r for r in records if r.startswith("demo_Panthera_tigris")))
    out = runner.invoke(app, ["identify", str(query), "--library", "demo", "--json"])
    assert out.exit_code == 0, out.output
    rate: dict = json.loads(out.stdout)["error_rate"]  # type: ignore[type-arg]
    return rate


@pytest.mark.parametrize(
    "stale",
    [
        "rule revision 1 (none recorded)",
        "statistics method before this release",
        "neither: made by this release",
    ],
)
def test_a_validation_of_earlier_calls_gives_no_error_rate(tmp_path, world, stale: str) -> None:  # type: ignore[no-untyped-def]
    from species_ref.profile import PROFILE_METHOD
    from species_ref.rules import get_rule

    rule, method = get_rule("default").to_dict(), PROFILE_METHOD
    if stale.startswith("rule"):
        rule = {"name": "default"}
    elif stale.startswith("statistics"):
        method -= 1
    rate = _tiger_error_rate_with(world, tmp_path, {"rule": rule, "statistics_method": method})
    if stale.startswith("neither"):
        assert rate["validated"] is True
    else:
        assert rate["validated"] is False and rate["count"] == 0
        assert "has not been validated under this rule" in rate["statement"]
