"""Bad input through the CLI: one-line errors, no traceback, no hang, nothing changed.

Every case of the table drives `custody` as a user would, with one malformed
input, and asserts: exit 1 (refused) or 2 (usage), exactly one line on stderr
starting with "error:", no "Traceback" anywhere, and the store (every row of
every table, the attachments, reference libraries and keys on disk) unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from custody.cli.main import app
from custody.species import bundled_data
from tests.conftest import CASE, World

DATA = Path(__file__).parent / "data" / "species_io"


# --------------------------------------------------------------------------- helpers
def store_digest(world: World) -> str:
    """A hash of every row of every table and of every file the store keeps beside it."""
    digest = hashlib.sha256()
    con = sqlite3.connect(world.db_path)
    try:
        tables = [
            r[0]
            for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        for table in tables:
            rows = sorted(con.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
            digest.update(repr((table, rows)).encode())
    finally:
        con.close()
    root = world.db_path.parent
    for folder in (root / "attachments", root / "references", world.home):
        for path in sorted(folder.rglob("*")) if folder.exists() else []:
            if path.is_file() and not path.is_symlink() and ".cache" not in path.parts:
                digest.update(str(path.relative_to(root)).encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def invoke(cli: CliRunner, args: list[str]) -> tuple[int, str, str]:
    result = cli.invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


def assert_refused(cli: CliRunner, world: World, args: list[str], *, wanted: str = "") -> str:
    """Run `args`; assert a one-line refusal, no traceback and an unchanged store."""
    before = store_digest(world)
    code, stdout, stderr = invoke(cli, args)
    assert code in (1, 2), (args, code, stdout, stderr)
    assert "Traceback" not in stdout + stderr, (args, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, stderr)
    assert lines[0].endswith("."), (args, lines[0])
    assert wanted.lower() in lines[0].lower(), (args, lines[0])
    assert store_digest(world) == before, args
    return lines[0]


@pytest.fixture
def item(world: World) -> str:
    return world.item(seal="S-1", weight=2.5, unit="kg")


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO; a watchdog opens its writing end after 20 s so a blocked reader fails
    the test instead of hanging it."""
    path = tmp_path / "pipe.fasta"
    os.mkfifo(path)
    stop = threading.Event()

    def unblock() -> None:
        if not stop.wait(20):
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)

    watchdog = threading.Thread(target=unblock, daemon=True)
    watchdog.start()
    yield path
    stop.set()
    watchdog.join()


def deep_json(tmp_path: Path, depth: int = 100_000) -> Path:
    path = tmp_path / "deep.json"
    path.write_text("[" * depth + "]" * depth)
    return path


@dataclass(frozen=True)
class Case:
    """One malformed input: the CLI arguments (built in the test's folder)."""

    args: Callable[[Path, str], list[str]]
    wanted: str = ""


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "items.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


AS = ["--as", "aotieno"]

CASES: dict[str, Case] = {
    # extreme and impossible dates, everywhere a time is accepted
    "seized-at year 1 east of UTC": Case(
        lambda t, i: [
            "item",
            "add",
            CASE,
            "--description",
            "x",
            "--seized-at",
            "0001-01-01T00:00+14:00",
            *AS,
        ],
        "plausible",
    ),
    "seized-at year 9999 west of UTC": Case(
        lambda t, i: [
            "item",
            "add",
            CASE,
            "--description",
            "x",
            "--seized-at",
            "9999-12-31T23:59-12:00",
            *AS,
        ],
        "plausible",
    ),
    "case open --at year 1": Case(
        lambda t, i: ["case", "open", "C-2", "--title", "t", "--at", "0001-01-01T00:00+14:00", *AS],
        "plausible",
    ),
    "transfer --at year 9999": Case(
        lambda t, i: ["transfer", i, "--to", "jmwangi", "--at", "9999-12-31T23:59-12:00", *AS],
        "plausible",
    ),
    "transfer --at in the future": Case(
        lambda t, i: ["transfer", i, "--to", "jmwangi", "--at", "2199-01-01T00:00Z", *AS], "future"
    ),
    "CSV seized_at year 1": Case(
        lambda t, i: [
            "item",
            "import",
            CASE,
            _csv(t, "description,seized_at\nx,0001-01-01T00:00+14:00\n"),
            *AS,
        ],
        "plausible",
    ),
    # numbers too large for the store
    "correct a 20-digit event": Case(
        lambda t, i: ["correct", "99999999999999999999", "--reason", "r", *AS], "event_id"
    ),
    "bag with 21 digits": Case(
        lambda t, i: [
            "item",
            "add",
            CASE,
            "--description",
            "x",
            "--bag",
            "999999999999999999999/9999999999999999999999",
            *AS,
        ],
        "bag",
    ),
    "ref validate --max-queries -3": Case(
        lambda t, i: ["ref", "validate", "demo", "--max-queries", "-3"], "--max-queries"
    ),
    "ref show --version 0": Case(lambda t, i: ["ref", "show", "demo", "--version", "0"]),
    # arguments that are not UTF-8 (bytes 0xff on the command line)
    "non-UTF-8 item ID": Case(lambda t, i: ["item", "show", i + "\udcff"], "UTF-8"),
    "non-UTF-8 description": Case(
        lambda t, i: ["item", "add", CASE, "--description", "\udcff\udcfe", *AS], "UTF-8"
    ),
    # JSON nested 100,000 deep
    "deep offer (complete-transfer)": Case(
        lambda t, i: ["complete-transfer", str(deep_json(t)), *AS], "not a transfer offer"
    ),
    "deep offer (countersign)": Case(
        lambda t, i: ["countersign", str(deep_json(t)), "--as", "jmwangi"], "not a transfer offer"
    ),
    "deep actor card": Case(
        lambda t, i: ["actor", "import", str(deep_json(t))], "not an actor card"
    ),
    "deep checkpoint": Case(
        lambda t, i: ["verify", "--checkpoint", str(deep_json(t))], "not a custody checkpoint"
    ),
    "JSON nested 65 deep": Case(
        lambda t, i: ["actor", "import", str(deep_json(t, 65))], "not an actor card"
    ),
    # CSV files
    "CSV column twice": Case(
        lambda t, i: ["item", "import", CASE, _csv(t, "description,description\na,b\n"), *AS],
        "more than once",
    ),
    "CSV photo ../": Case(
        lambda t, i: [
            "item",
            "import",
            CASE,
            _csv(t, "description,photos\nx,../home/keys/secret.pem\n"),
            *AS,
        ],
        "leaves the CSV's folder",
    ),
    "CSV photo absolute": Case(
        lambda t, i: ["item", "import", CASE, _csv(t, "description,photos\nx,/etc/passwd\n"), *AS],
        "not relative",
    ),
    "CSV photo ~": Case(
        lambda t, i: ["item", "import", CASE, _csv(t, "description,photos\nx,~/.ssh/id\n"), *AS],
        "not relative",
    ),
    "CSV photo folder": Case(
        lambda t, i: ["item", "import", CASE, _csv(t, "description,photos\nx,.\n"), *AS],
        "not an ordinary file",
    ),
    "CSV unit stone": Case(
        lambda t, i: ["item", "import", CASE, _csv(t, "description,weight,unit\nx,3,stone\n"), *AS],
        "stone",
    ),
    # units and seals
    "unit stone": Case(
        lambda t, i: [
            "item",
            "add",
            CASE,
            "--description",
            "x",
            "--weight",
            "3",
            "--unit",
            "stone",
            *AS,
        ],
        "unit 'stone'",
    ),
    "weight of 1e300 kg": Case(
        lambda t, i: [
            "item",
            "add",
            CASE,
            "--description",
            "x",
            "--weight",
            "1e300",
            "--unit",
            "kg",
            *AS,
        ],
        "beyond any seizure",
    ),  # fmt: skip
    "CSV weight of 1e300 kg": Case(
        lambda t, i: [
            "item",
            "import",
            CASE,
            _csv(t, "description,weight,unit\nx,1e300,kg\n"),
            *AS,
        ],
        "beyond any seizure",
    ),  # fmt: skip
    "reference import --max-ambiguous nan": Case(
        lambda t, i: [
            "ref",
            "import",
            "lib",
            str(DATA / "ref_pipe.fasta"),
            "--max-ambiguous",
            "nan",
        ],
        "not a finite number",
    ),
    "ref conflicts --within nan": Case(
        lambda t, i: ["ref", "conflicts", "lib", "--within", "nan"], "not a finite number"
    ),
    "seal already on another item": Case(
        lambda t, i: ["item", "add", CASE, "--description", "x", "--seal", "S-1", *AS],
        "already recorded on item KWS-2026-0042/1",
    ),
    # outputs
    "label print into a missing folder": Case(
        lambda t, i: ["label", "print", i, "-o", str(t / "missing" / "dir" / "x.pdf"), *AS],
        "does not exist",
    ),
    "checkpoint into a missing folder": Case(
        lambda t, i: ["checkpoint", "-o", str(t / "missing" / "cp.json")], "does not exist"
    ),
    "checkpoint onto a folder": Case(lambda t, i: ["checkpoint", "-o", str(t)], "is a folder"),
    "checkpoint with a too long name": Case(
        lambda t, i: ["checkpoint", "-o", str(t / ("c" * 300))], "name is too long"
    ),
    "actor card into a missing folder": Case(
        lambda t, i: ["actor", "card", "aotieno", "-o", str(t / "no" / "card.json")],
        "does not exist",
    ),
    # reference files
    "GenBank cut inside ORIGIN": Case(
        lambda t, i: ["ref", "import", "lib", str(_cut_genbank(t))], "no closing '//'"
    ),
    "GenBank shorter than its LOCUS": Case(
        lambda t, i: ["ref", "import", "lib", str(_short_genbank(t))], "declares 384 bp"
    ),
    "GenBank read as FASTA": Case(
        lambda t, i: ["ref", "import", "lib", str(DATA / "ref_small.gb"), "--format", "fasta"],
        "is not valid fasta (this fasta file contains comments at the beginning of the file, "
        "which are not allowed by the 'fasta' parser); check the file",
    ),
    "marker with a newline": Case(
        lambda t, i: [
            "ref",
            "import",
            "lib",
            str(DATA / "ref_bold.fasta"),
            "--marker",
            "COI\n>evil|Homo sapiens|COI",
        ],
        "marker",
    ),
    "marker with an escape": Case(
        lambda t, i: [
            "ref",
            "import",
            "lib",
            str(DATA / "ref_bold.fasta"),
            "--marker",
            "COI\x1b[2J",
        ],
        "marker",
    ),
    "reference file is a folder": Case(lambda t, i: ["ref", "import", "lib", str(t)], "directory"),
    "query file is a folder": Case(
        lambda t, i: ["identify", str(t), "--library", "lib"], "directory"
    ),
    # usage errors print one line too
    "missing argument": Case(lambda t, i: ["item", "add"], "missing argument"),
    "not an integer": Case(
        lambda t, i: ["item", "add", CASE, "--description", "x", "--count", "many"], "--count"
    ),
    "unknown command": Case(lambda t, i: ["frobnicate"], "no such command"),
    "database password in an error": Case(
        lambda t, i: ["--db", "postgresql://alice:hunter2@/nodb?host=/nonexistent", "verify"],
        "alice:***@",
    ),
    "dossier verify of a missing file": Case(
        lambda t, i: ["dossier", "verify", str(t / "none.pdf")], "does not exist"
    ),
}


def _cut_genbank(tmp_path: Path) -> Path:
    text = (DATA / "ref_small.gb").read_text()
    path = tmp_path / "cut.gb"
    path.write_text(text[: text.index("//")].rsplit("\n", 3)[0] + "\n")
    return path


def _short_genbank(tmp_path: Path) -> Path:
    lines = (DATA / "ref_small.gb").read_text().splitlines(keepends=True)
    cut = next(n for n, line in enumerate(lines) if line.lstrip().startswith("361 "))
    path = tmp_path / "short.gb"
    path.write_text("".join(lines[:cut] + lines[cut + 1 :]))
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_sentence_and_changes_nothing(
    name: str, world: World, item: str, cli: CliRunner, tmp_path: Path
) -> None:
    case = CASES[name]
    assert_refused(cli, world, case.args(tmp_path, item), wanted=case.wanted)


@pytest.mark.parametrize(
    "args",
    [
        ["ref", "import", "lib", "{fifo}"],
        ["identify", "{fifo}", "--library", "lib"],
        ["verify", "--checkpoint", "{fifo}"],
        ["verify", "--trusted-keys", "{fifo}"],
        ["dossier", "verify", "{fifo}"],
        ["actor", "import", "{fifo}"],
        ["complete-transfer", "{fifo}", "--as", "aotieno"],
        ["item", "import", CASE, "{fifo}", "--as", "aotieno"],
        ["item", "add", CASE, "--description", "x", "--photo", "{fifo}", "--as", "aotieno"],
        ["scan", "{fifo}"],
        ["ref", "curate", "lib", "--decisions", "{fifo}", "--as", "wkamau"],
        ["identify", "{query}", "--library", "lib", "--map", "{fifo}", "--as", "wkamau"],
    ],
    ids=lambda a: " ".join(a[:2]) + (" " + a[-3] if "--as" in a and a[0] != "item" else ""),
)
def test_a_fifo_is_refused_without_blocking(
    args: list[str], world: World, cli: CliRunner, fifo: Path, tmp_path: Path
) -> None:
    if "{query}" in args or "curate" in args:
        lib = tmp_path / "lib.fasta"
        lib.write_text((DATA / "ref_pipe.fasta").read_text())
        assert invoke(cli, ["ref", "import", "lib", str(lib)])[0] == 0
    query = tmp_path / "q.fasta"
    query.write_text(">q1\n" + "ACGT" * 40 + "\n")
    given = {"{fifo}": str(fifo), "{query}": str(query)}
    line = assert_refused(cli, world, [given.get(a, a) for a in args])
    assert "pipe" in line or "not a file" in line or "not a regular file" in line, line


def test_csv_photos_stay_inside_the_csv_folder(
    world: World, cli: CliRunner, tmp_path: Path
) -> None:
    """The HIGH finding: a private key outside the CSV's folder must never be attached."""
    folder = tmp_path / "import"
    (folder / "photos").mkdir(parents=True)
    (folder / "photos" / "bag.jpg").write_bytes(b"\xff\xd8 a photo")
    key = next((world.home / "keys").glob("aotieno.*.pem"))
    (folder / "photos" / "key.jpg").symlink_to(key)
    (folder / "linked").symlink_to(world.home / "keys", target_is_directory=True)
    for bad in ("photos/key.jpg", "linked/" + key.name, f"../home/keys/{key.name}", str(key)):
        csv = folder / "items.csv"
        csv.write_text(f"description,photos\nbag,photos/bag.jpg;{bad}\n", encoding="utf-8")
        line = assert_refused(cli, world, ["item", "import", CASE, str(csv), *AS])
        assert "items.csv" in line and "line 2: the attachment" in line
    attachments = world.db_path.parent / "attachments"
    key_hash = hashlib.sha256(key.read_bytes()).hexdigest()
    assert not any(p.name == key_hash for p in attachments.rglob("*"))
    # A photo inside the folder is attached.
    csv = folder / "items.csv"
    csv.write_text("description,photos\nbag,./photos/bag.jpg\n", encoding="utf-8")
    code, stdout, stderr = invoke(cli, ["item", "import", CASE, str(csv), *AS])
    assert code == 0, stderr
    photo_hash = hashlib.sha256(b"\xff\xd8 a photo").hexdigest()
    assert any(p.name == photo_hash for p in attachments.rglob("*"))


def test_card_without_agency_code_is_not_a_card(
    world: World, cli: CliRunner, tmp_path: Path
) -> None:
    card = tmp_path / "card.json"
    assert invoke(cli, ["actor", "card", "aotieno", "-o", str(card)])[0] == 0
    data = json.loads(card.read_text())
    del data["actor"]["agency_code"]
    card.write_text(json.dumps(data))
    assert_refused(cli, world, ["actor", "import", str(card)], wanted="not an actor card")


def test_outputs_never_follow_links_nor_replace_files(
    world: World, cli: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere.txt"
    link = tmp_path / "cp.json"
    link.symlink_to(target)
    assert_refused(cli, world, ["checkpoint", "-o", str(link)], wanted="symbolic link")
    assert not target.exists()
    out = tmp_path / "cp2.json"
    assert invoke(cli, ["checkpoint", "-o", str(out)])[0] == 0
    first = out.read_bytes()
    assert_refused(cli, world, ["checkpoint", "-o", str(out)], wanted="--force")
    assert out.read_bytes() == first
    assert invoke(cli, ["checkpoint", "-o", str(out), "--force"])[0] == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_ref_export_ignores_a_planted_temporary_link(
    world: World, cli: CliRunner, tmp_path: Path
) -> None:
    assert invoke(cli, ["ref", "import", "demo", str(bundled_data("demo_library.fasta"))])[0] == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "x.fasta"
    (tmp_path / "x.fasta.tmp").symlink_to(victim)
    code, _, stderr = invoke(cli, ["ref", "export", "demo", "-o", str(out)])
    assert code == 0, stderr
    assert victim.read_text() == "precious"
    assert out.read_text().startswith(">") and not out.is_symlink()
    assert_refused(cli, world, ["ref", "export", "demo", "-o", str(out)], wanted="--force")
    link = tmp_path / "y.fasta"
    link.symlink_to(victim)
    assert_refused(cli, world, ["ref", "export", "demo", "-o", str(link)], wanted="symbolic link")
    assert victim.read_text() == "precious"


def test_ids_with_a_pipe_never_reach_an_export(
    world: World, cli: CliRunner, tmp_path: Path
) -> None:
    """A record whose ID holds '|' is rejected at import, so the export re-imports whole."""
    lines = (DATA / "ref_bold.tsv").read_text().splitlines(keepends=True)
    first = lines[1].split("\t")
    first[0] = "GBMIN|1234"
    tsv = tmp_path / "ref.tsv"
    tsv.write_text("".join([lines[0], "\t".join(first), *lines[2:]]))
    code, stdout, stderr = invoke(cli, ["ref", "import", "bold", str(tsv)])
    assert code == 0, stderr
    assert "unusable ID" in stdout
    kept = int(stdout.split(" sequences")[0].split()[-1])
    out = tmp_path / "bold.fasta"
    assert invoke(cli, ["ref", "export", "bold", "-o", str(out)])[0] == 0
    assert out.read_text().count(">") == kept
    code, stdout, stderr = invoke(cli, ["ref", "import", "again", str(out)])
    assert code == 0, stderr
    assert f"  {kept} sequences" in stdout and "rejected" not in stdout


def test_control_characters_in_user_text_are_shown_escaped(world: World, cli: CliRunner) -> None:
    evil = "Fins \x1b[2J\x1b]0;owned\x07 \u009b31m \u202egnp.exe"
    code, item_id, _ = invoke(cli, ["item", "add", CASE, "--description", evil, *AS])
    assert code == 0
    item_id = item_id.strip()
    for args in (["item", "show", item_id], ["history", item_id], ["item", "list"],
                 ["case", "show", CASE]):  # fmt: skip
        code, stdout, stderr = invoke(cli, args)
        assert code == 0, stderr
        assert "\x1b" not in stdout and "\x9b" not in stdout and "\u202e" not in stdout, args
        assert "\\x1b" in stdout, args
    code, stdout, _ = invoke(cli, ["item", "show", item_id])
    assert "\\x1b[2J" in stdout and "\\x9b31m" in stdout and "\\u202e" in stdout
    code, stdout, _ = invoke(cli, ["item", "show", item_id, "--json"])
    assert json.loads(stdout)["description"] == evil
    assert "\x1b" not in stdout and "\x9b" not in stdout
    # An error that quotes user text escapes it as well.
    line = assert_refused(cli, world, ["item", "show", "\x1b[2J"])
    assert "\\x1b[2J" in line


def test_duplicate_seal_can_be_accepted_deliberately(
    world: World, item: str, cli: CliRunner
) -> None:
    code, stdout, stderr = invoke(
        cli,
        ["item", "add", CASE, "--description", "x", "--seal", "S-1", "--allow-duplicate-seal",
         *AS],
    )  # fmt: skip
    assert code == 0, stderr
    other = world.item()
    assert invoke(cli, ["seal", other, "--seal", "S-77", *AS])[0] == 0
    line = assert_refused(cli, world, ["item", "add", CASE, "--description", "y", "--seal",
                                       "S-77", *AS])  # fmt: skip
    assert f"item {other}" in line
    csv = world.db_path.parent / "two.csv"
    csv.write_text("description,seal\na,S-9\nb,S-9\n", encoding="utf-8")
    assert "rows 1 and 2" in assert_refused(cli, world, ["item", "import", CASE, str(csv), *AS])


def test_units_come_from_the_list(world: World, cli: CliRunner) -> None:
    for unit, stored in (("kg", "kg"), ("KIL", "KIL"), ("ml", "ml"), ("pcs", "pcs"),
                         ("kil", "KIL")):  # fmt: skip
        code, out, err = invoke(
            cli, ["item", "add", CASE, "--description", "x", "--weight", "1", "--unit", unit, *AS]
        )
        assert code == 0, err
        code, shown, _ = invoke(cli, ["item", "show", out.strip(), "--json"])
        assert json.loads(shown)["unit"] == stored


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    text=st.text(
        alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
        max_size=40,
    ),
    option=st.sampled_from(["--seized-at", "--bag", "--unit", "--count", "--weight", "--lat"]),
)
def test_generated_item_options_never_crash(
    world: World, cli: CliRunner, text: str, option: str
) -> None:
    """Arbitrary text in any item option is either accepted or refused in one line."""
    args = ["item", "add", CASE, "--description", "generated", option, text, *AS]
    if option == "--unit":
        args += ["--weight", "1"]
    if option == "--lat":
        args += ["--lon", "1"]
    result = cli.invoke(app, args)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    if result.exit_code:
        assert result.exit_code in (1, 2)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# --------------------------------------------------------------------------- keys
def test_a_passphrase_for_an_unencrypted_key_is_not_an_error(
    world: World, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTODY_PASSPHRASE", "not needed")
    code, stdout, stderr = invoke(cli, ["case", "open", "C-9", "--title", "t", *AS])
    assert code == 0 and stdout.strip() == "C-9", stderr


def test_an_empty_passphrase_never_writes_an_unencrypted_key(
    world: World, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTODY_PASSPHRASE", "")
    line = assert_refused(
        cli, world, ["actor", "add", "newbie", "--name", "N", "--role", "officer"]
    )
    assert "CUSTODY_PASSPHRASE is set but empty" in line
    assert not list((world.home / "keys").glob("newbie.*"))


def test_an_encrypted_key_asks_for_its_passphrase_on_a_terminal(
    world: World, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import getpass

    import custody.cli.common as common

    monkeypatch.setenv("CUSTODY_PASSPHRASE", "s3cret")
    assert invoke(cli, ["actor", "add", "locked", "--name", "L", "--role", "officer"])[0] == 0
    monkeypatch.delenv("CUSTODY_PASSPHRASE")
    line = assert_refused(cli, world, ["case", "open", "C-8", "--title", "t", "--as", "locked"])
    assert "passphrase-protected" in line
    asked: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        asked.append(prompt)
        return "s3cret"

    monkeypatch.setattr(common, "_terminal_attached", lambda: True)
    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    code, stdout, stderr = invoke(cli, ["case", "open", "C-8", "--title", "t", "--as", "locked"])
    assert code == 0 and stdout.strip() == "C-8", stderr
    assert asked and "locked" in asked[0]
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "wrong")
    line = assert_refused(cli, world, ["case", "open", "C-7", "--title", "t", "--as", "locked"])
    assert "could not be unlocked" in line


def test_private_folders_under_umask_000(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "fresh" / "home"
    monkeypatch.setenv("CUSTODY_HOME", str(home))
    monkeypatch.setenv("CUSTODY_DB", str(home / "custody.db"))
    old = os.umask(0)
    try:
        assert invoke(cli, ["init", "--agency-code", "KWS"])[0] == 0
        assert invoke(cli, ["actor", "add", "a1", "--name", "A", "--role", "officer"])[0] == 0
    finally:
        os.umask(old)
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "keys").stat().st_mode & 0o777 == 0o700
    (home / "keys").chmod(0o777)
    code, _, stderr = invoke(cli, ["case", "open", "C-1", "--title", "t", "--as", "a1"])
    assert code == 1 and f"run 'chmod 700 {home / 'keys'}'" in stderr
    code, _, stderr = invoke(cli, ["actor", "add", "a2", "--name", "B", "--role", "officer"])
    assert code == 1 and "can be written by other users" in stderr


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    content=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.sampled_from(
            [
                b"LOCUS       X 10 bp DNA\nORIGIN\n        1 acgt",
                b'{"format": "custody-actor-card-v1", "actor": {}}',
                b"description,photos\nx,/etc/passwd\n",
                b"\xef\xbb\xbfdescription\n\x00\n",
                b">a|Manis javanica|COI\n" + b"ACGT" * 30 + b"\n>b|\n",
            ]
        ),
    ),
    command=st.sampled_from(
        [
            ["actor", "import", "{f}"],
            ["verify", "--checkpoint", "{f}"],
            ["item", "import", CASE, "{f}", "--as", "aotieno"],
            ["ref", "import", "lib", "{f}"],
            ["complete-transfer", "{f}", "--as", "aotieno"],
            ["dossier", "verify", "{f}"],
        ]
    ),
)
def test_arbitrary_file_contents_are_refused_in_one_line(
    world: World, cli: CliRunner, tmp_path: Path, content: bytes, command: list[str]
) -> None:
    path = tmp_path / "input.dat"
    path.write_bytes(content)
    result = cli.invoke(app, [str(path) if a == "{f}" else a for a in command])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    if command[0] == "dossier":  # a damaged dossier is a report, not an error
        assert result.exit_code == 1 and result.stdout.startswith("NOT VALID"), result.output
    elif result.exit_code != 0:
        assert result.exit_code in (1, 2), result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
