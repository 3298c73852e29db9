"""Initial schema: agencies, actors, cases, items, events, store head, metadata.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = sa.String()


def upgrade() -> None:
    op.create_table(
        "store_meta",
        sa.Column("key", S, primary_key=True, nullable=False),
        sa.Column("value", S, nullable=False),
    )
    op.create_table(
        "agencies",
        sa.Column("code", S, primary_key=True, nullable=False),
        sa.Column("name", S, nullable=False),
        sa.Column("country", S, nullable=False),
    )
    op.create_table(
        "actors",
        sa.Column("handle", S, primary_key=True, nullable=False),
        sa.Column("name", S, nullable=False),
        sa.Column("role", S, nullable=False),
        sa.Column("badge", S, nullable=False),
        sa.Column("agency_code", S, sa.ForeignKey("agencies.code"), nullable=True),
        sa.Column("public_key", S, nullable=False),
        sa.Column("key_fingerprint", S, nullable=False),
        sa.Column("created_at", S, nullable=False),
        sa.Column("registration_signature", S, nullable=False),
    )
    op.create_index("ix_actors_key_fingerprint", "actors", ["key_fingerprint"])
    op.create_table(
        "cases",
        sa.Column("case_no", S, primary_key=True, nullable=False),
        sa.Column("title", S, nullable=False),
        sa.Column("agency_code", S, sa.ForeignKey("agencies.code"), nullable=True),
        sa.Column("jurisdiction", S, nullable=False),
        sa.Column("legal_basis", S, nullable=False),
        sa.Column("opened_at", S, nullable=False),
        sa.Column("opened_by", S, sa.ForeignKey("actors.handle"), nullable=False),
    )
    op.create_table(
        "items",
        sa.Column("description", S, nullable=False),
        sa.Column("species", S, nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.Column("unit", S, nullable=False),
        sa.Column("packaging", S, nullable=False),
        sa.Column("bag_no", sa.Integer(), nullable=True),
        sa.Column("bag_total", sa.Integer(), nullable=True),
        sa.Column("other_ids", sa.Text(), nullable=False),
        sa.Column("place", S, nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("id", S, primary_key=True, nullable=False),
        sa.Column("case_no", S, sa.ForeignKey("cases.case_no"), nullable=False),
        sa.Column("parent_id", S, sa.ForeignKey("items.id"), nullable=True),
        sa.Column("seized_at", S, nullable=False),
        sa.Column("seized_at_local", S, nullable=False),
        sa.Column("seizing_officer", S, sa.ForeignKey("actors.handle"), nullable=False),
        sa.Column("seal_at_seizure", S, nullable=False),
        sa.Column("created_at", S, nullable=False),
    )
    op.create_index("ix_items_case", "items", ["case_no"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False, nullable=False),
        sa.Column("chain", S, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("item_id", S, sa.ForeignKey("items.id"), nullable=True),
        sa.Column("case_no", S, sa.ForeignKey("cases.case_no"), nullable=False),
        sa.Column("type", S, nullable=False),
        sa.Column("at", S, nullable=False),
        sa.Column("recorded_at", S, nullable=False),
        sa.Column("actor", S, sa.ForeignKey("actors.handle"), nullable=False),
        sa.Column("actor_key", S, nullable=False),
        sa.Column("counterparty", S, sa.ForeignKey("actors.handle"), nullable=True),
        sa.Column("witness", S, sa.ForeignKey("actors.handle"), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", S, nullable=True),
        sa.Column("hash", S, nullable=False),
        sa.Column("signatures", sa.Text(), nullable=False),
        sa.Column("log_prev", S, nullable=True),
        sa.Column("log_hash", S, nullable=False),
        sa.UniqueConstraint("chain", "seq", name="uq_events_chain_seq"),
    )
    op.create_index("ix_events_item", "events", ["item_id"])
    op.create_index("ix_events_case", "events", ["case_no"])
    op.create_table(
        "store_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False, nullable=False),
        sa.Column("log_seq", sa.Integer(), nullable=False),
        sa.Column("log_hash", S, nullable=False),
        sa.Column("actor", S, nullable=False),
        sa.Column("actor_key", S, nullable=False),
        sa.Column("signature", S, nullable=False),
        sa.Column("updated_at", S, nullable=False),
    )


def downgrade() -> None:
    for table in ("store_head", "events", "items", "cases", "actors", "agencies", "store_meta"):
        op.drop_table(table)
