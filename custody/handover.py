"""Hand-overs between machines: actor cards and countersigned transfers.

A transfer needs the signatures of the releaser and the receiver (and of a
witness, if one is named). When they each keep their private key on their own
laptop or phone, or work for another agency, the hand-over goes in three steps:

1. the releaser prepares an offer (`prepare_transfer`): the hand-over statement
   of the transfer event (item, chain position and previous hash, time, parties,
   seal, purpose, place), signed by the releaser; nothing is recorded;
2. the receiver and the witness each countersign it on their own machine
   (`countersign`), which needs only their private key, not the store;
3. the releaser records it (`complete_transfer`): the event is appended with the
   releaser's signature over the event and the countersignatures over its
   statement, which `verify` checks like any other signature.

The statement leaves out only the event's store-wide position and recording
time (`custody.chain.handover_statement`), so events on other items recorded in
between do not spoil an offer; any event on the same item does, because the
statement names the previous hash of the item's chain.

Actors from elsewhere are registered from their actor card (`actor_card`,
`import_actor_card`): the public registration record with its self-signature.
Their private key never leaves their machine.

Invariants: a countersignature is checked against the key the store holds for
that actor before anything is written; the recorded event's statement equals the
offer's, or the write is rolled back; a failed step changes nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import select

from custody.chain import (
    body_of_row,
    event_body,
    handover_message,
    handover_statement,
)
from custody.domain import EventType
from custody.errors import (
    AlreadyExists,
    IllegalTransition,
    InvalidInput,
    KeyProblem,
    StoreProblem,
)
from custody.events import (
    Cosign,
    Draft,
    Recorded,
    Signer,
    Writer,
    check_transfer_parties,
    check_transition,
    event_time,
    get_actor,
    get_item,
    store_id,
)
from custody.keys import key_matches, load_key, verify_signature
from custody.models import ROLES, Actor, Agency, Event
from custody.records import HANDLE_RE
from custody.registrations import ACTOR_FIELDS, registration_ok
from custody.store import Store
from custody.timeutil import now_utc, to_utc_text

OFFER_FORMAT = "custody-transfer-offer-v1"
CARD_FORMAT = "custody-actor-card-v1"
COUNTERSIGNERS = ("receiver", "witness")


# --------------------------------------------------------------------------- files
def load_document(path: Path, *, parse: Callable[..., dict[str, Any]], what: str) -> dict[str, Any]:
    """Read and parse an offer or card file; a clear error names an unreadable path."""
    from custody.files import read_text

    return parse(read_text(path, what=f"{what} file"), name=str(path))


def save_document(path: Path, data: dict[str, Any], *, what: str) -> None:
    """Write `data` as JSON to `path` atomically (an offer is rewritten when countersigned)."""
    from custody.files import os_reason

    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as exc:
        raise InvalidInput(
            f"The {what} file {path} cannot be written ({os_reason(exc)}); choose another path."
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InvalidInput(
            f"The {what} file {path} cannot be written ({os_reason(exc)}); choose another path."
        ) from None


# --------------------------------------------------------------------------- actor cards
def actor_card(store: Store, handle: str) -> dict[str, Any]:
    """The public registration of `handle`, for registering them in another store."""
    with store.read() as session:
        actor = get_actor(session, handle)
        agency = session.get(Agency, actor.agency_code) if actor.agency_code else None
        return {
            "format": CARD_FORMAT,
            "actor": {f: getattr(actor, f) for f in ACTOR_FIELDS},
            "agency": (
                {"code": agency.code, "name": agency.name, "country": agency.country}
                if agency
                else None
            ),
        }


def _json(text: str) -> Any:
    from custody.files import parse_json

    return parse_json(text)


def read_card(text: str, *, name: str) -> dict[str, Any]:
    """Parse an actor card file; `InvalidInput` names the file when it is not one."""
    card = _json(text)
    actor = card.get("actor") if isinstance(card, dict) else None
    agency = card.get("agency") if isinstance(card, dict) else None
    if (
        not isinstance(card, dict)
        or card.get("format") != CARD_FORMAT
        or not isinstance(actor, dict)
        or any(f not in actor for f in ACTOR_FIELDS)
        or any(not isinstance(actor.get(f), str) for f in ACTOR_FIELDS if f != "agency_code")
        or not isinstance(actor.get("agency_code"), str | None)
        or not (
            agency is None
            or isinstance(agency, dict)
            and all(isinstance(agency.get(f), str) for f in ("code", "name", "country"))
        )
    ):
        raise InvalidInput(
            f"{name} is not an actor card; write one with 'custody actor card HANDLE -o FILE'."
        )
    return card


def import_actor_card(
    store: Store,
    card: dict[str, Any],
    *,
    name: str = "the card",
    authority: Signer | None = None,
) -> Actor:
    """Register the actor of `card` (public key only); refuse a card that was altered.

    Like any registration an act of this agency: the root key here or `authority` (a
    certified admin) certifies the key in the trust log.
    """
    from custody.records import agency_authority
    from custody.trust import TrustLog, store_root

    a = card["actor"]
    if not registration_ok(a):
        raise InvalidInput(
            f"The actor card {name} does not match its signed registration (it was edited); "
            f"ask '{a['handle']}' for a fresh card."
        )
    if not HANDLE_RE.match(a["handle"]) or a["role"] not in ROLES:
        raise InvalidInput(
            f"The actor card {name} names an invalid handle or role; it was not made by custody."
        )
    agency = card.get("agency")
    if a["agency_code"] and (agency is None or agency["code"] != a["agency_code"]):
        raise InvalidInput(
            f"The actor card {name} names agency {a['agency_code']} without describing it; "
            f"ask for a fresh card."
        )
    with store.read() as session:
        store_id(session)  # the store was initialised
        acting = agency_authority(store, session, authority)
    with store.write() as session:
        existing = session.get(Actor, a["handle"])
        if existing is not None:
            if existing.public_key == a["public_key"]:
                raise AlreadyExists(
                    f"Actor '{a['handle']}' is registered already with this key; nothing to do."
                )
            raise AlreadyExists(
                f"Actor '{a['handle']}' exists already with another key; a store cannot hold "
                f"two actors with one handle, so ask them to register under another handle."
            )
        if agency and session.get(Agency, agency["code"]) is None:
            session.add(Agency(code=agency["code"], name=agency["name"], country=agency["country"]))
            session.flush()
        actor = Actor(**{f: a[f] for f in ACTOR_FIELDS})
        session.add(actor)
        session.flush()
        root = store_root(session)
        assert root is not None
        TrustLog(session, root).issue(
            kind="import",
            actor=actor,
            issuer=acting.issuer,
            key=acting.key,
            reason=f"registered from the actor card of agency {a['agency_code'] or '-'}",
        )
        session.expunge(actor)
    return actor


# --------------------------------------------------------------------------- offers
def prepare_transfer(
    store: Store,
    *,
    item_id: str,
    signer: Signer,
    receiver: str,
    witness: str | None = None,
    purpose: str = "",
    location: str = "",
    at: str | None = None,
) -> dict[str, Any]:
    """The signed offer of a transfer, to be countersigned elsewhere; records nothing."""
    releaser = signer.actor.handle
    check_transfer_parties(item_id=item_id, releaser=releaser, receiver=receiver, witness=witness)
    when = event_time(at) or to_utc_text(now_utc())
    with store.read() as session:
        writer = Writer(session)
        item = get_item(session, item_id)
        parties = {h: get_actor(session, h) for h in (releaser, receiver, witness) if h}
        state = writer.item_state(item_id)
        data: dict[str, Any] = {
            "from": releaser,
            "to": receiver,
            "purpose": purpose,
            "location": location,
        }
        to_agency = parties[receiver].agency_code
        if to_agency and to_agency != signer.actor.agency_code:
            data["to_agency"] = to_agency  # custody leaves this agency's store
        check_transition(state, EventType.TRANSFER, signer.actor, data)
        writer.check_time(item_id, when)
        seq, prev_hash, _prev_at = writer.tail(item_id)
        statement = handover_statement(
            event_body(
                id=0,
                chain=item_id,
                seq=seq + 1,
                item_id=item_id,
                case_no=item.case_no,
                type=EventType.TRANSFER,
                at=when,
                recorded_at="",
                actor=releaser,
                actor_key=signer.key.fingerprint,
                counterparty=receiver,
                witness=witness,
                data={**data, "seal": state.seal},
                prev_hash=prev_hash,
            )
        )
        offer = {
            "format": OFFER_FORMAT,
            "store": writer.store_id,
            "description": item.description,
            "statement": statement,
            "keys": {
                h: {"name": a.name, "public_key": a.public_key, "fingerprint": a.key_fingerprint}
                for h, a in parties.items()
            },
            "signatures": [
                {
                    "role": "actor",
                    "handle": releaser,
                    "key": signer.key.fingerprint,
                    "sig": signer.key.sign(handover_message(statement)),
                    "over": "handover",
                }
            ],
        }
    return offer


def read_offer(text: str, *, name: str) -> dict[str, Any]:
    """Parse a transfer offer file; `InvalidInput` names the file when it is not one."""
    offer = _json(text)
    st = offer.get("statement") if isinstance(offer, dict) else None
    if (
        not isinstance(offer, dict)
        or offer.get("format") != OFFER_FORMAT
        or not isinstance(st, dict)
        or st.get("type") != EventType.TRANSFER
        or not isinstance(st.get("data"), dict)
        or any(not isinstance(st.get(f), str) for f in ("item", "case", "at", "actor"))
        or not isinstance(st.get("counterparty"), str)
        or not isinstance(st.get("witness"), str | None)
        or not isinstance(st.get("prev"), str | None)
        or not isinstance(st.get("actor_key"), str)
        or not isinstance(st.get("seq"), int)
        or not isinstance(offer.get("store"), str)
        or not isinstance(offer.get("keys"), dict)
        or not all(
            isinstance(k, dict) and isinstance(k.get("public_key"), str)
            for k in offer["keys"].values()
        )
        or not isinstance(offer.get("signatures"), list)
        or not all(isinstance(s, dict) for s in offer["signatures"])
    ):
        raise InvalidInput(
            f"{name} is not a transfer offer; make one with 'custody transfer ITEM --to HANDLE "
            f"--offer FILE'."
        )
    return offer


def _valid_signature(
    offer: dict[str, Any], *, role: str, handle: str, public_hex: str
) -> dict[str, str] | None:
    """The offer's signature by `handle` as `role` over its statement, if one verifies."""
    message = handover_message(offer["statement"])
    for s in offer["signatures"]:
        if (
            s.get("role") == role
            and s.get("handle") == handle
            and s.get("over") == "handover"
            and verify_signature(
                public_hex=public_hex, signature_b64=str(s.get("sig")), message=message
            )
        ):
            return {k: str(s.get(k)) for k in ("role", "handle", "key", "sig", "over")}
    return None


def _check_offer_intact(offer: dict[str, Any], *, name: str) -> None:
    st = offer["statement"]
    releaser = st["actor"]
    key = offer["keys"].get(releaser) or {}
    public = str(key.get("public_key", ""))
    key_ok = key_matches(public, st.get("actor_key"))
    if not key_ok or not _valid_signature(offer, role="actor", handle=releaser, public_hex=public):
        raise InvalidInput(
            f"The transfer offer {name} does not match {releaser}'s signature (it was edited); "
            f"ask {releaser} for a new offer."
        )


def describe_offer(offer: dict[str, Any]) -> dict[str, Any]:
    """What a countersigner is asked to confirm, in plain fields."""
    st = offer["statement"]
    data = st["data"]
    return {
        "item": st["item"],
        "description": offer.get("description", ""),
        "from": st["actor"],
        "to": st["counterparty"],
        "witness": st.get("witness"),
        "at": st["at"],
        "seal": data.get("seal"),
        "purpose": data.get("purpose", ""),
        "location": data.get("location", ""),
        "signed": sorted(
            str(s.get("role")) for s in offer["signatures"] if s.get("role") in COUNTERSIGNERS
        ),
    }


def countersign(
    offer: dict[str, Any],
    *,
    handle: str,
    home: Path,
    passphrase: str | None = None,
    name: str = "the offer",
) -> tuple[dict[str, Any], str]:
    """The offer with `handle`'s countersignature added, and the role they sign in.

    Needs only `handle`'s private key under `home`; no store is opened.
    """
    st = offer["statement"]
    _check_offer_intact(offer, name=name)
    if handle == st["counterparty"]:
        role = "receiver"
    elif handle and handle == st.get("witness"):
        role = "witness"
    else:
        raise InvalidInput(
            f"Actor '{handle}' is neither the receiver ({st['counterparty']}) nor the witness "
            f"of the transfer offer {name}; the person it names must countersign it."
        )
    if any(s.get("role") == role for s in offer["signatures"]):
        raise AlreadyExists(f"The transfer offer {name} is countersigned by its {role} already.")
    key_info = offer["keys"].get(handle) or {}
    fpr = str(key_info.get("fingerprint", ""))
    key = load_key(home, handle=handle, fpr=fpr, passphrase=passphrase)
    if key.public_hex != key_info.get("public_key"):
        raise KeyProblem(
            f"The transfer offer {name} expects another key for '{handle}' than the one here; "
            f"register this key with the releaser's store first (custody actor import)."
        )
    signature = {
        "role": role,
        "handle": handle,
        "key": key.fingerprint,
        "sig": key.sign(handover_message(st)),
        "over": "handover",
    }
    return {**offer, "signatures": [*offer["signatures"], signature]}, role


def complete_transfer(
    store: Store, *, offer: dict[str, Any], signer: Signer, name: str = "the offer"
) -> Recorded:
    """Record the countersigned transfer of `offer` as its releaser; changes nothing on error."""
    st = offer["statement"]
    item_id = st["item"]
    if signer.actor.handle != st["actor"] or signer.key.fingerprint != st.get("actor_key"):
        raise InvalidInput(
            f"The transfer offer {name} was made by '{st['actor']}'; only they can record it "
            f"(pass --as {st['actor']})."
        )
    _check_offer_intact(offer, name=name)
    with store.write() as session:
        writer = Writer(session)
        if writer.store_id != offer["store"]:
            raise InvalidInput(
                f"The transfer offer {name} was made in another store ({offer['store']}); "
                f"record it there."
            )
        item = get_item(session, item_id)
        if offer.get("description", item.description) != item.description:
            # The description is shown to countersigners but not signed: it must be the record's.
            raise InvalidInput(
                f"The transfer offer {name} describes {item_id} otherwise than the record "
                f"does (it was edited); make and countersign a new offer."
            )
        seq, prev_hash, _prev_at = writer.tail(item_id)
        if seq >= st["seq"]:
            done = session.exec(
                select(Event).where(Event.chain == item_id, Event.seq == st["seq"])
            ).first()
            if done is not None and handover_statement(body_of_row(done)) == st:
                raise AlreadyExists(
                    f"The transfer offer {name} is recorded already (event {done.id} on "
                    f"{item_id}); nothing to do."
                )
        if (seq + 1, prev_hash) != (st["seq"], st.get("prev")):
            raise IllegalTransition(
                f"Item {item_id} has new custody events since the transfer offer {name} was "
                f"made; make and countersign a new offer."
            )
        state = writer.item_state(item_id)
        check_transition(state, EventType.TRANSFER, signer.actor, st["data"])
        required = {"receiver": st["counterparty"]}
        if st.get("witness"):
            required["witness"] = st["witness"]
        countersignatures = []
        for role, handle in required.items():
            actor = get_actor(session, handle)
            sig = _valid_signature(offer, role=role, handle=handle, public_hex=actor.public_key)
            if sig is None:
                raise IllegalTransition(
                    f"The transfer offer {name} lacks a valid countersignature of its {role} "
                    f"'{handle}'; have them run 'custody countersign {name} --as {handle}'."
                )
            if sig["key"] != actor.key_fingerprint:
                raise KeyProblem(
                    f"The {role} countersignature of the transfer offer {name} names another "
                    f"key than '{handle}''s registered one; ask for a new countersignature."
                )
            countersignatures.append(sig)
        draft = Draft.on_item(
            item_id, case_no=st["case"], type=EventType.TRANSFER, data=st["data"], at=st["at"]
        )
        cosign = Cosign(
            remote=(st["counterparty"], st.get("witness")),
            remote_signatures=tuple(countersignatures),
        )
        row = writer.append(draft, signer=signer, cosign=cosign)
        if handover_statement(body_of_row(row)) != st:
            raise StoreProblem(
                f"The recorded transfer of {item_id} would differ from the countersigned offer "
                f"{name}; nothing was recorded."
            )
        writer.finish()
    return Recorded(events=(row,))
