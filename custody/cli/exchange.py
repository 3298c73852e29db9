"""`custody bundle create|verify|import`: custody that moves between agencies' stores."""

from __future__ import annotations

from pathlib import Path

import typer

from custody.cli.common import AS, done, open_store, out, print_json, shown, signer, styled

app = typer.Typer(
    help="Signed custody bundles: an item's whole custody, for another agency or a court.",
    no_args_is_help=True,
)


@app.command("create")
def bundle_create(
    items: list[str] = typer.Argument(None, help="Items to bundle (with their sub-items)."),
    case: str | None = typer.Option(None, "--case", help="Bundle every item of this case."),
    output: Path = typer.Option(..., "-o", "--output", help="Custody bundle file to write."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    actor: str | None = AS,
) -> None:
    """Write a signed, verifiable copy of items' custody (for a prosecutor or a court)."""
    from custody.exchange import create_bundle, write_bundle
    from custody.files import check_output

    check_output(output, what="custody bundle", force=force)
    store = open_store()
    data = create_bundle(store, signer=signer(store, actor), item_ids=items or [], case_no=case)
    write_bundle(output, data, force=force)
    done(f"Custody bundle written to {output}; check it with 'custody bundle verify {output}'.")


@app.command("verify")
def bundle_verify(
    bundle: Path = typer.Argument(..., help="Custody bundle file."),
    trust: list[Path] = typer.Option(
        [],
        "--trust",
        help="Trust list of agencies' roots; without it, the roots this store trusts; repeatable (the entries of every file are trusted).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Check a custody bundle: TRUSTED, NOT TRUSTED (naming the signers) or NOT VALID; exit 0 only for TRUSTED."""
    from custody.exchange import verify_bundle_file
    from custody.trust import read_trust_lists

    entries = read_trust_lists(trust)
    check = verify_bundle_file(
        bundle, trust=entries, store=open_store() if entries is None else None
    )
    if as_json:
        print_json(check.to_dict())
    else:
        verdict = check.verdict
        colour = "green" if verdict == "TRUSTED" else "bold red"
        out.print(
            styled(
                (verdict, colour),
                f": {bundle}: {check.events} events of {', '.join(check.items) or 'no items'} "
                f"from agency {shown(check.agency or '?')}, signed by {shown(check.signer or '?')}",
            )
        )
        for problem in check.problems:
            out.print(f"  problem: {problem}")
        for sentence in check.untrusted:
            out.print(f"  not trusted: {sentence}")
    raise typer.Exit(0 if check.verdict == "TRUSTED" else 1)


@app.command("import")
def bundle_import(
    bundle: Path = typer.Argument(..., help="Custody bundle from another agency."),
    actor: str | None = AS,
) -> None:
    """Verify a custody bundle against this store's trusted roots and bring its items in with their history."""
    from custody.exchange import import_bundle, read_bundle

    store = open_store()
    acting = signer(store, actor)
    result = import_bundle(store, read_bundle(bundle), signer=acting, name=str(bundle))
    done(
        f"Imported {result.events} event(s) of {', '.join(result.items)} from agency "
        f"{result.agency}."
    )
    for item, who in sorted(result.pending.items()):
        out.print(f"{item}: awaiting receipt by '{who}' ('custody receive {item} --as {who}').")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="bundle")
