"""`custody init` and `custody actor ...`."""

from __future__ import annotations

from pathlib import Path

import typer

from custody.cli.common import SETTINGS, done, open_store, out, print_json, shown, signer

app = typer.Typer(
    help="Register actors (officers, custodians, analysts, prosecutors, admins).",
    no_args_is_help=True,
)


def init(
    agency_code: str | None = typer.Option(None, help="Code of the home agency, e.g. KWS."),
    agency_name: str | None = typer.Option(None, help="Full name of the agency."),
    country: str = typer.Option("", help="ISO 3166 country code of the agency, e.g. KE."),
) -> None:
    """Create the store (or upgrade an old one), register the home agency and create its root key.

    The agency root key (Ed25519, kept in CUSTODY_HOME/keys like actors' keys; encrypted
    when CUSTODY_PASSPHRASE is set) certifies every actor; compare its fingerprint with
    the one other agencies pin ('custody trust export').
    """
    from custody.keys import new_key_passphrase
    from custody.records import init_store, root_fingerprint
    from custody.trust import short

    store = init_store(
        SETTINGS.db,
        agency_code=agency_code,
        agency_name=agency_name,
        country=country,
        root_passphrase=new_key_passphrase(),
    )
    where = store.sqlite_path or store.url
    if store.backup_path:
        done(f"Backed up the old store to {store.backup_path} before upgrading.")
    done(f"Store ready at {where}")
    fpr = root_fingerprint(store)
    if fpr:
        out.print(f"agency root key fingerprint: {short(fpr)}")


ADMIN = typer.Option(
    None,
    "--as",
    help="An admin certified by the agency root, when the root key is not on this machine.",
)


@app.command("add")
def actor_add(
    handle: str = typer.Argument(..., help="Short unique handle, e.g. 'aotieno'."),
    name: str = typer.Option(..., help="Full name."),
    role: str = typer.Option(..., help="officer, custodian, analyst, prosecutor or admin."),
    badge: str = typer.Option("", help="Badge or staff number."),
    agency: str | None = typer.Option(None, help="Agency code."),
    admin: str | None = ADMIN,
) -> None:
    """Register an actor and create their Ed25519 key pair (private key kept in CUSTODY_HOME/keys).

    An act of the agency: needs the agency root key on this machine or --as ADMIN; the
    certificate is written to the store's trust log.
    """
    from custody.keys import new_key_passphrase
    from custody.records import add_actor

    store = open_store()
    actor = add_actor(
        store,
        handle=handle,
        name=name,
        role=role,
        badge=badge,
        agency_code=agency,
        passphrase=new_key_passphrase(),
        authority=signer(store, admin) if admin else None,
    )
    out.print(f"{actor.handle}  {actor.role}  key {actor.key_fingerprint[:16]}")


@app.command("role")
def actor_role(
    handle: str = typer.Argument(..., help="Handle of the actor."),
    role: str = typer.Option(
        ..., help="The new role: officer, custodian, analyst, prosecutor or admin."
    ),
    admin: str | None = ADMIN,
) -> None:
    """Change an actor's role from now on (a certificate in the trust log; earlier acts keep the old role)."""
    from custody.records import change_role

    store = open_store()
    change_role(store, handle=handle, role=role, authority=signer(store, admin) if admin else None)
    done(f"'{handle}' has the role {role} from now on.")


@app.command("revoke")
def actor_revoke(
    handle: str = typer.Argument(..., help="Handle of the actor whose key is revoked."),
    reason: str = typer.Option(..., help="Why (lost laptop, left the agency ...)."),
    admin: str | None = ADMIN,
) -> None:
    """Revoke an actor's key from now on: it signs nothing more; earlier acts stay valid."""
    from custody.records import revoke_actor

    store = open_store()
    revoke_actor(
        store, handle=handle, reason=reason, authority=signer(store, admin) if admin else None
    )
    done(f"Key of '{handle}' revoked; events it signs from now on are findings.")


@app.command("rotate-key")
def actor_rotate_key(
    handle: str = typer.Argument(..., help="Handle of the actor who gets a new key."),
    admin: str | None = ADMIN,
) -> None:
    """Give an actor a new key pair from now on (certified in the trust log); the old key
    stays valid for what it signed before and signs nothing after."""
    from custody.keys import new_key_passphrase
    from custody.records import rotate_key

    store = open_store()
    actor, old = rotate_key(
        store,
        handle=handle,
        passphrase=new_key_passphrase(),
        authority=signer(store, admin) if admin else None,
    )
    out.print(f"{actor.handle}  key {actor.key_fingerprint[:16]} (replaces {old[:16]})")


@app.command("card")
def actor_card(
    handle: str = typer.Argument(..., help="Handle of the actor."),
    output: Path = typer.Option(..., "-o", "--output", help="Actor card file to write (JSON)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing card file."),
) -> None:
    """Write an actor's public registration card, to register them in another store."""
    from custody.files import check_output
    from custody.handover import actor_card as make_card
    from custody.handover import save_document

    check_output(output, what="actor card file", force=force)
    card = make_card(open_store(), handle)
    save_document(output, card, what="actor card")
    done(
        f"Actor card of '{handle}' written to {output}; register it elsewhere with "
        f"'custody actor import {output}' (the private key stays here)."
    )


@app.command("import")
def actor_import(
    card: Path = typer.Argument(..., help="Actor card file from 'custody actor card'."),
    admin: str | None = ADMIN,
) -> None:
    """Register an actor of another machine or agency from their card (public key only)."""
    from custody.handover import import_actor_card, load_document, read_card

    data = load_document(card, parse=read_card, what="actor card")
    store = open_store()
    actor = import_actor_card(
        store, data, name=str(card), authority=signer(store, admin) if admin else None
    )
    out.print(f"{actor.handle}  {actor.role}  key {actor.key_fingerprint[:16]}")


@app.command("list")
def actor_list(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    fingerprints: bool = typer.Option(
        False,
        "--fingerprints",
        help="Only key fingerprints with handles (a trusted key file for verify).",
    ),
) -> None:
    """List actors with their roles and key fingerprints."""
    from custody.records import list_actors

    actors = list_actors(open_store())
    if fingerprints:
        for a in actors:
            typer.echo(f"{a.key_fingerprint}  # {a.handle}, {shown(a.name)}, {a.role}")
        return
    if as_json:
        print_json(
            [
                {
                    "handle": a.handle,
                    "name": a.name,
                    "role": a.role,
                    "badge": a.badge,
                    "agency": a.agency_code,
                    "key_fingerprint": a.key_fingerprint,
                    "public_key": a.public_key,
                    "created_at": a.created_at,
                }
                for a in actors
            ]
        )
        return
    from rich.table import Table

    table = Table("handle", "name", "role", "badge", "agency", "key fingerprint")
    for a in actors:
        table.add_row(
            a.handle, a.name, a.role, a.badge, a.agency_code or "", a.key_fingerprint[:16] + "…"
        )
    out.print(table)


def register(root: typer.Typer) -> None:
    root.command("init")(init)
    root.add_typer(app, name="actor")
