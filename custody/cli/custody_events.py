"""Custody event commands: seal, unseal, transfer, receive, store, sample, dispose,
note, correct, and the history of an item."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from custody.cli.common import (
    AS,
    AT,
    MAX_INT,
    done,
    open_store,
    out,
    print_id,
    print_json,
    signer,
    with_passphrase,
)
from custody.domain import EventRecord
from custody.domain import EventType as E
from custody.state import ItemState

if TYPE_CHECKING:
    from custody.store import Store

ITEM = typer.Argument(..., help="Item ID, e.g. KWS-2026-0042/3.")


def _report(recorded: object) -> None:
    for ev in recorded.events:  # type: ignore[attr-defined]
        done(f"Recorded {ev.type} (event {ev.id}) on {ev.chain}.")


def seal(
    item: str = ITEM,
    seal: str = typer.Option(..., "--seal", help="Seal number."),
    allow_duplicate_seal: bool = typer.Option(
        False,
        "--allow-duplicate-seal",
        help="Accept a seal number already recorded on another item.",
    ),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Seal an item with a numbered tamper-evident seal."""
    from custody.events import record_seal

    store = open_store()
    _report(
        record_seal(
            store,
            item_id=item,
            signer=signer(store, actor),
            seal=seal,
            at=at,
            allow_duplicate_seal=allow_duplicate_seal,
        )
    )


def unseal(
    item: str = ITEM,
    seal: str = typer.Option(..., "--seal", help="Number of the seal being broken."),
    reason: str = typer.Option(..., help="Why the seal is broken."),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Break an item's seal (must name the seal it breaks)."""
    from custody.events import record_unseal

    store = open_store()
    _report(
        record_unseal(
            store, item_id=item, signer=signer(store, actor), seal=seal, reason=reason, at=at
        )
    )


def transfer(
    items: list[str] = typer.Argument(
        ..., help="Item ID(s); several are handed over in one signature ceremony."
    ),
    to: str = typer.Option(..., "--to", help="Handle of the receiver (signs too)."),
    purpose: str = typer.Option("", help="Purpose of the transfer."),
    location: str = typer.Option("", help="Where the hand-over happens."),
    witness: str | None = typer.Option(None, help="Handle of a witness (signs too)."),
    offer: Path | None = typer.Option(
        None,
        "--offer",
        help="Write a signed offer to this file for the receiver (and witness) to countersign "
        "on their own machine; nothing is recorded until 'custody complete-transfer'.",
    ),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Hand items over: releaser and receiver (and witness) all sign, one event per item."""
    store = open_store()
    if offer is not None:
        if len(items) > 1:
            from custody.errors import InvalidInput

            raise InvalidInput(
                "A transfer offer carries one item; write one offer per item or hand the items "
                "over together on this machine."
            )
        _offer_transfer(
            store, item=items[0], offer=offer, actor=actor, to=to, witness=witness,
            purpose=purpose, location=location, at=at,
        )  # fmt: skip
        return
    from custody.events import record_transfers

    _report(
        record_transfers(
            store,
            item_ids=items,
            signer=signer(store, actor),
            receiver=signer(store, to),
            witness=signer(store, witness) if witness else None,
            purpose=purpose,
            location=location,
            at=at,
        )
    )


def _offer_transfer(
    store: Store,
    *,
    item: str,
    offer: Path,
    actor: str | None,
    to: str,
    witness: str | None,
    purpose: str,
    location: str,
    at: str | None,
) -> None:
    """Write a signed transfer offer to be countersigned elsewhere; records nothing."""
    from custody.files import check_output
    from custody.handover import prepare_transfer, save_document

    check_output(offer, what="transfer offer file", can_force=False)
    prepared = prepare_transfer(
        store,
        item_id=item,
        signer=signer(store, actor),
        receiver=to,
        witness=witness,
        purpose=purpose,
        location=location,
        at=at,
    )
    save_document(offer, prepared, what="transfer offer")
    who = " and ".join(f"'{h}'" for h in (to, witness) if h)
    done(
        f"Transfer offer for {item} written to {offer}; nothing is recorded yet. {who} "
        f"countersign it with 'custody countersign {offer} --as HANDLE', then record it "
        f"with 'custody complete-transfer {offer}'."
    )


def countersign(
    offer: Path = typer.Argument(..., help="Transfer offer file (rewritten with the signature)."),
    actor: str | None = AS,
) -> None:
    """Countersign a transfer offer as its receiver or witness, with the key on this machine.

    Needs no store: only the actor's private key (CUSTODY_HOME/keys). Check the
    printed hand-over against the item in front of you before signing.
    """
    import os

    from custody.errors import InvalidInput
    from custody.handover import (
        countersign as sign_offer,
    )
    from custody.handover import (
        describe_offer,
        load_document,
        read_offer,
        save_document,
    )
    from custody.keys import PASSPHRASE_ENV
    from custody.store import custody_home

    if not actor:
        raise InvalidInput(
            "Countersigning needs the signer; pass --as HANDLE or set CUSTODY_ACTOR."
        )
    data = load_document(offer, parse=read_offer, what="transfer offer")
    signed, role = with_passphrase(
        lambda passphrase: sign_offer(
            data,
            handle=actor,
            home=custody_home(),
            passphrase=passphrase or os.environ.get(PASSPHRASE_ENV) or None,
            name=str(offer),
        ),
        actor,
    )
    save_document(offer, signed, what="transfer offer")
    d = describe_offer(signed)
    done(
        f"Countersigned as {role}: item {d['item']} ({d['description']}) from {d['from']} to "
        f"{d['to']} at {d['at']}, seal {d['seal'] or 'none'}"
        + (f", purpose {d['purpose']}" if d["purpose"] else "")
        + (f", at {d['location']}" if d["location"] else "")
        + f". Return {offer} to {d['from']}."
    )


def complete_transfer(
    offer: Path = typer.Argument(..., help="Countersigned transfer offer file."),
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Also write the signed custody bundle of the item (and its sub-items) for the "
        "receiving agency to import with 'custody bundle import'.",
    ),
    actor: str | None = AS,
) -> None:
    """Record a transfer whose receiver (and witness) countersigned the offer elsewhere."""
    from custody.handover import complete_transfer as complete
    from custody.handover import load_document, read_offer

    store = open_store()
    data = load_document(offer, parse=read_offer, what="transfer offer")
    if output is not None:
        from custody.files import check_output

        check_output(output, what="custody bundle", can_force=False)
    acting = signer(store, actor)
    _report(complete(store, offer=data, signer=acting, name=str(offer)))
    if output is not None:
        from custody.exchange import create_bundle, write_bundle

        item = data["statement"]["item"]
        write_bundle(output, create_bundle(store, signer=acting, item_ids=[item], offer=data))
        done(
            f"Custody bundle of {item} written to {output}; the receiving agency imports it "
            f"with 'custody bundle import {output}'."
        )


def receive(
    item: str = ITEM,
    condition: str = typer.Option(..., help="Condition on receipt, e.g. 'seal intact'."),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Confirm receipt of a transferred item and record its condition."""
    from custody.events import record_receive

    store = open_store()
    _report(
        record_receive(store, item_id=item, signer=signer(store, actor), condition=condition, at=at)
    )


def store_cmd(
    item: str = ITEM,
    location: str = typer.Option(..., help="Storage location, e.g. 'Vault B, shelf 3'."),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Put an item in a storage location."""
    from custody.events import record_store

    store = open_store()
    _report(
        record_store(store, item_id=item, signer=signer(store, actor), location=location, at=at)
    )


def sample(
    item: str = ITEM,
    description: str = typer.Option(..., help="What the sample is, e.g. 'scale, 20 mg tissue'."),
    reason: str = typer.Option("", help="Sampling plan: why this part was sampled."),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Take a sub-sample (creates a child item); prints the new item ID."""
    from custody.records import record_sample

    store = open_store()
    child = record_sample(
        store,
        item_id=item,
        signer=signer(store, actor),
        description=description,
        reason=reason,
        at=at,
    )
    print_id(child.id)


def dispose(
    item: str = ITEM,
    method: str = typer.Option(..., help="destroyed, returned or released (to court)."),
    authority: str = typer.Option(..., help="Order or authority for the disposal."),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Close an item's custody: destroyed, returned or released to court."""
    from custody.events import record_dispose

    store = open_store()
    _report(
        record_dispose(
            store,
            item_id=item,
            signer=signer(store, actor),
            method=method,
            authority=authority,
            at=at,
        )
    )


def note(
    item: str = ITEM,
    text: str = typer.Option(..., help="The note."),
    photo: list[Path] = typer.Option([], "--photo", help="Photo or file to attach; repeatable."),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Add a signed note (and attachments) to an item."""
    from custody.events import record_note

    store = open_store()
    _report(
        record_note(store, item_id=item, signer=signer(store, actor), text=text, files=photo, at=at)
    )


def correct(
    event_id: int = typer.Argument(
        ..., min=1, max=MAX_INT, help="ID of the event being corrected."
    ),
    reason: str = typer.Option(..., help="What was wrong and what is right."),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="FIELD=VALUE: correct a field of the item's record (on its creating event), e.g. weight=2.9; repeatable. Without --set the event is withdrawn.",
    ),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Record a correction pointing at an earlier event (the original stays)."""
    from custody.events import record_correction
    from custody.records import record_field_correction

    store = open_store()
    who = signer(store, actor)
    if set_:
        _report(
            record_field_correction(
                store, event_id=event_id, signer=who, reason=reason, assignments=set_, at=at
            )
        )
    else:
        _report(record_correction(store, event_id=event_id, signer=who, reason=reason, at=at))


def void(
    item: str = ITEM,
    reason: str = typer.Option(..., help="Why the item was entered in error."),
    at: str | None = AT,
    actor: str | None = AS,
) -> None:
    """Void an item entered in error: it stays in the record, scans VOID, and takes no further custody act."""
    from custody.events import record_void

    store = open_store()
    _report(record_void(store, item_id=item, signer=signer(store, actor), reason=reason, at=at))


def _summary(ev: EventRecord) -> str:
    ev_type, data, counterparty = ev.type, ev.data, ev.counterparty
    if ev_type == E.SEIZE:
        item = data.get("item", {})
        return f"seized: {item.get('description')}" + (
            f"; seal {item['seal_at_seizure']}" if item.get("seal_at_seizure") else ""
        )
    if ev_type == E.TRANSFER:
        return (
            f"to {counterparty}"
            + (f" for {data['purpose']}" if data.get("purpose") else "")
            + (f" at {data['location']}" if data.get("location") else "")
        )
    if ev_type == E.SAMPLE:
        return (
            f"sample {data['child']}: {data.get('description', '')}"
            if "child" in data
            else f"taken from {data.get('parent')}"
        )
    if ev_type == E.ANALYSE:
        return str(data.get("statement") or data.get("summary") or "analysis recorded")
    if ev_type == E.LABEL_PRINT:
        return (
            f"{data.get('copies')} x {data.get('layout')}"
            + (f", reprint {data['reprint']}" if data.get("reprint") else "")
            + (f" ({data['reason']})" if data.get("reason") else "")
        )
    if ev_type == E.CORRECT:
        changed = ", ".join(f"{k} = {v}" for k, v in (data.get("set") or {}).items())
        what = f" ({changed})" if changed else ""
        return f"corrects event {data.get('corrects')}{what}: {data.get('reason')}"
    keys = ("seal", "reason", "condition", "location", "method", "authority", "text")
    return "; ".join(f"{k} {data[k]}" for k in keys if data.get(k))


def _withdrawn(state: ItemState, event_id: int) -> dict[str, object] | None:
    if event_id not in state.withdrawn:
        return None
    by, reason = state.withdrawn[event_id]
    return {"by_event": by, "reason": reason}


def history(
    item: str = ITEM, as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")
) -> None:
    """Show an item's full custody timeline."""
    from custody.events import item_history

    _, events, state = item_history(open_store(), item)
    if as_json:
        print_json(
            [
                {
                    "id": ev.id,
                    "seq": ev.seq,
                    "type": ev.type,
                    "at": ev.at,
                    "recorded_at": ev.recorded_at,
                    "actor": ev.actor,
                    "counterparty": ev.counterparty,
                    "witness": ev.witness,
                    "data": ev.data,
                    "hash": ev.hash,
                    "prev_hash": ev.prev_hash,
                    "signatures": ev.signatures(),
                    "corrected_by": state.corrected.get(ev.id, []),
                    "withdrawn": _withdrawn(state, ev.id),
                }
                for ev in events
            ]
        )
        return
    from rich.table import Table

    table = Table("event", "time (UTC)", "type", "actor", "details")
    for ev in events:
        detail = _summary(ev)
        if ev.id in state.withdrawn:
            by, why = state.withdrawn[ev.id]
            detail = f"WITHDRAWN by event {by} ({why}): {detail}"
        elif ev.id in state.corrected:
            detail += f"  (corrected by {', '.join(map(str, state.corrected[ev.id]))})"
        table.add_row(str(ev.id), ev.at.replace("T", " ")[:19], ev.type, ev.actor, detail)
    out.print(table)
    out.print(f"custodian {state.custodian}  seal {state.seal or '-'}  status {state.status}")


def register(app: typer.Typer) -> None:
    app.command("seal")(seal)
    app.command("unseal")(unseal)
    app.command("transfer")(transfer)
    app.command("countersign")(countersign)
    app.command("complete-transfer")(complete_transfer)
    app.command("receive")(receive)
    app.command("store")(store_cmd)
    app.command("sample")(sample)
    app.command("dispose")(dispose)
    app.command("note")(note)
    app.command("correct")(correct)
    app.command("void")(void)
    app.command("history")(history)
