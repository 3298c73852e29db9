"""SQLModel tables of the custody store, and `ItemCreate`, the shape of a new item.

Invariants:
- Natural keys are the primary keys (agency code, actor handle, case number,
  item ID), so every column of a row is meaningful and covered by a hash.
- Item and case rows never change after creation; their contents are repeated in
  the data of the event that created them, and verification compares the two.
  Current state (custodian, seal, location, status) is derived from events.
- Events are append-only. `id` is the store-wide log sequence number.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

ROLES = ("officer", "custodian", "analyst", "prosecutor", "admin")


class StoreMeta(SQLModel, table=True):
    __tablename__ = "store_meta"

    key: str = Field(primary_key=True)
    value: str


class Agency(SQLModel, table=True):
    __tablename__ = "agencies"

    code: str = Field(primary_key=True)
    name: str
    country: str = ""


class ActorBase(SQLModel):
    handle: str = Field(primary_key=True)
    name: str
    role: str
    badge: str = ""
    agency_code: str | None = Field(default=None, foreign_key="agencies.code")


class Actor(ActorBase, table=True):
    __tablename__ = "actors"

    public_key: str  # raw Ed25519 public key, hex
    key_fingerprint: str = Field(index=True)
    created_at: str
    registration_signature: str  # self-signature over the registration record


class CaseBase(SQLModel):
    case_no: str = Field(primary_key=True)
    title: str
    agency_code: str | None = Field(default=None, foreign_key="agencies.code")
    jurisdiction: str = ""
    legal_basis: str = ""


class Case(CaseBase, table=True):
    __tablename__ = "cases"

    opened_at: str
    opened_by: str = Field(foreign_key="actors.handle")


class ItemBase(SQLModel):
    description: str
    species: str = ""
    count: int | None = None
    weight: float | None = None
    unit: str = ""
    packaging: str = ""
    bag_no: int | None = None
    bag_total: int | None = None
    other_ids: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON object
    place: str = ""
    lat: float | None = None
    lon: float | None = None


class ItemCreate(ItemBase):
    seized_at: str | None = None  # ISO-8601 with zone; default now
    seal: str = ""
    parent_id: str | None = None


class Item(ItemBase, table=True):
    __tablename__ = "items"
    __table_args__ = (Index("ix_items_case", "case_no"), Index("ix_items_parent", "parent_id"))

    id: str = Field(primary_key=True)  # <CASE>/<n>, sub-samples <CASE>/<n>.<m>
    case_no: str = Field(foreign_key="cases.case_no")
    parent_id: str | None = Field(default=None, foreign_key="items.id")
    seized_at: str  # UTC
    seized_at_local: str  # as given, with its zone offset
    seizing_officer: str = Field(foreign_key="actors.handle")
    seal_at_seizure: str = ""
    created_at: str


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("chain", "seq", name="uq_events_chain_seq"),
        Index("ix_events_item", "item_id"),
        Index("ix_events_case", "case_no"),
        Index("ix_events_type", "type"),
    )

    id: int = Field(primary_key=True)  # store-wide log sequence number, from 1
    chain: str  # item ID, or "case:<CASE_NO>" for case-level events
    seq: int  # position in its chain, from 1
    item_id: str | None = Field(default=None, foreign_key="items.id")
    case_no: str = Field(foreign_key="cases.case_no")
    type: str
    at: str  # when it happened (UTC)
    recorded_at: str  # when it was written (UTC)
    actor: str = Field(foreign_key="actors.handle")
    actor_key: str  # fingerprint of the key that signed as actor
    counterparty: str | None = Field(default=None, foreign_key="actors.handle")
    witness: str | None = Field(default=None, foreign_key="actors.handle")
    data: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON
    prev_hash: str | None = None
    hash: str
    signatures: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    log_prev: str | None = None
    log_hash: str
    # Set only on events brought in from another agency's custody bundle: their id in the
    # store that recorded them (which their hash covers) and that store's identity.
    origin_id: int | None = None
    origin_store: str | None = None


class StoreHead(SQLModel, table=True):
    """The signed head of the store-wide log: detects removal of the newest events."""

    __tablename__ = "store_head"

    id: int = Field(default=1, primary_key=True)
    log_seq: int
    log_hash: str
    actor: str
    actor_key: str
    signature: str
    updated_at: str


# --- Case entities' personal data, export keys and storage locations (issue 15) ---


class NominalRecord(SQLModel, table=True):
    """Personal data of a case entity, kept out of every signed event body.

    The entity's events carry `sha256(canonical({entity, salt, data}))`, so the data
    can be checked against its commitment, corrected by a new commitment, or erased
    (salt and data set to NULL) without breaking any chain.
    """

    __tablename__ = "nominal_records"
    __table_args__ = (Index("ix_nominal_records_case", "case_no"),)

    entity_id: str = Field(primary_key=True)  # <CASE>/P1, <CASE>/V2 ...
    case_no: str = Field(foreign_key="cases.case_no")
    salt: str | None = None  # hex; NULL once erased
    data: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: str


class ExportKey(SQLModel, table=True):
    """The HMAC key of one recipient of shared exports (pseudonyms link only for it)."""

    __tablename__ = "export_keys"

    recipient: str = Field(primary_key=True)
    key: str  # 32 random bytes, hex
    created_at: str


class StorageLocation(SQLModel, table=True):
    """A place evidence is kept: building > room > shelf > box."""

    __tablename__ = "storage_locations"

    code: str = Field(primary_key=True)
    name: str
    kind: str
    parent: str | None = Field(default=None, foreign_key="storage_locations.code")
    created_at: str


class Certificate(SQLModel, table=True):
    """One entry of a trust log: a certificate (or revocation) signed by an agency root
    or by an admin it certified. The store's own entries chain by `prev` in `seq` order;
    entries of other agencies' logs (brought in with custody bundles) keep their own."""

    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("root", "seq", name="uq_certificates_root_seq"),
        Index("ix_certificates_fingerprint", "fingerprint"),
    )

    id: int | None = Field(default=None, primary_key=True)
    root: str  # fingerprint of the agency root the entry chains to
    seq: int  # position in that root's trust log, from 1
    kind: str  # register, upgrade, import, role, rotate, revoke
    handle: str
    fingerprint: str  # the certified (or revoked) key
    body: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON
    hash: str
    signature: str


class TrustedRoot(SQLModel, table=True):
    """Another agency's root, pinned from its signed trust entry (`custody trust add`)."""

    __tablename__ = "trusted_roots"

    fingerprint: str = Field(primary_key=True)
    agency_code: str
    name: str
    country: str = ""
    public_key: str
    valid_from: str
    valid_until: str | None = None
    entry: str = Field(sa_column=Column(Text, nullable=False))  # the signed entry, JSON
    added_at: str
