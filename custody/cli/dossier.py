"""`custody dossier build|verify`: court-ready, self-verifying evidence dossiers."""

from __future__ import annotations

from pathlib import Path

import typer

from custody.cli.common import AS, err, open_store, out, print_json, signer, styled

app = typer.Typer(
    help="Court-ready evidence dossiers (PDF) that verify themselves.", no_args_is_help=True
)


@app.command("build")
def dossier_build(
    case_no: str = typer.Argument(..., help="Case number."),
    output: Path = typer.Option(..., "-o", "--output", help="PDF file to write."),
    prepared_for: str = typer.Option("", help="Court or prosecutor the dossier is prepared for."),
    reason: str = typer.Option(
        "",
        help="What changed since the previous dossier and why; required for an amendment.",
    ),
    allow_findings: bool = typer.Option(
        False,
        "--allow-findings",
        help="Build even when verification finds problems (they are printed prominently).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an existing file at the output path that is not an issued dossier (issued dossiers are never replaced).",
    ),
    personal_data: bool = typer.Option(
        False,
        "--personal-data",
        help="Print the case entities' personal data (names, dates of birth, ID and passport numbers, phones, addresses) in the pages; never in the embedded bundle. Left out by default.",
    ),
    actor: str | None = AS,
) -> None:
    """Verify the case, then write and sign its evidence dossier; records the issue in the case."""
    from custody.dossier.build import build_dossier

    store = open_store()
    result = build_dossier(
        store,
        case_no=case_no,
        out=output,
        signer=signer(store, actor),
        prepared_for=prepared_for,
        reason=reason,
        allow_findings=allow_findings,
        force=force,
        personal_data=personal_data,
        progress=lambda m: err.print(styled((m, "dim"))),
    )
    for f in result.findings:
        err.print(
            styled(
                ("FINDING", "bold red"),
                f" {f.subject} event {f.event or '-'}: {f.kind}: {f.message}",
            )
        )
    title = (
        f"Amendment {result.amendment} to {result.supersedes}"
        if result.amendment
        else "original issue"
    )
    out.print(f"{result.report_id} ({title}), {result.pages} pages: {result.path}")
    out.print(f"bundle {result.bundle_hash}")
    out.print(f"pdf    {result.pdf_sha256}")


@app.command("verify")
def dossier_verify(
    pdf: Path = typer.Argument(..., help="Dossier PDF to check (offline; no store needed)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    trust: list[Path] = typer.Option(
        [],
        "--trust",
        help="Trust list of agencies' roots (from 'custody trust export'): TRUSTED only when every signer chains to one; exit 0 only then; repeatable (the entries of every file are trusted).",
    ),
) -> None:
    """Check a dossier offline: bundle, every chain and signature, printed hash, PDF signature.

    Prints VALID or NOT VALID; with --trust, TRUSTED, NOT TRUSTED (naming the signers no
    trusted root certified) or NOT VALID.
    """
    from custody.dossier.build import verify_dossier
    from custody.files import require_regular
    from custody.trust import read_trust_lists

    entries = read_trust_lists(trust)
    check = verify_dossier(require_regular(pdf, what="dossier"), trust=entries)
    verdict = check.verdict
    if as_json:
        print_json(check.to_dict())
    elif check.valid:
        sig = check.signature
        colour = "bold red" if verdict == "NOT TRUSTED" else "green"
        out.print(
            styled(
                (verdict, colour),
                f": {check.report_id}: {check.events} events re-verified; bundle {check.bundle_hash}",
            )
        )
        out.print(
            f"PDF signed by {sig.get('signer')} (key {str(sig.get('signer_fingerprint'))[:16]}…) at {sig.get('signing_time')}, covering the whole file."
        )
        if check.trust is not None:
            for sentence in check.trust.untrusted:
                out.print(f"  not trusted: {sentence}")
            if check.trust.trusted:
                out.print("Every signer chains to an agency root of the trust list.")
    else:
        out.print(styled(("NOT VALID", "bold red"), f": {pdf}"))
        for problem in check.problems:
            out.print(f"  problem: {problem}")
        for f in check.findings:
            out.print(f"  finding: {f.subject} event {f.event or '-'}: {f.kind}: {f.message}")
    ok = verdict == "TRUSTED" if entries is not None else check.valid
    raise typer.Exit(0 if ok else 1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="dossier")
