"""Trust logs and pinned agency roots: certificates signed by the agency root, and
other agencies' roots pinned from their trust entries; events brought in from
another agency's custody bundle keep their id there (origin_id, origin_store).

Existing actors are certified when `custody init` first creates the agency root
on an upgraded store (the migration cannot: the root key lives on the agency's
machine, not in the store); each such certificate says so in the trust log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = sa.String()


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("origin_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("origin_store", S, nullable=True))
    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("root", S, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", S, nullable=False),
        sa.Column("handle", S, nullable=False),
        sa.Column("fingerprint", S, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("hash", S, nullable=False),
        sa.Column("signature", S, nullable=False),
        sa.UniqueConstraint("root", "seq", name="uq_certificates_root_seq"),
    )
    op.create_index("ix_certificates_fingerprint", "certificates", ["fingerprint"])
    op.create_table(
        "trusted_roots",
        sa.Column("fingerprint", S, primary_key=True, nullable=False),
        sa.Column("agency_code", S, nullable=False),
        sa.Column("name", S, nullable=False),
        sa.Column("country", S, nullable=False),
        sa.Column("public_key", S, nullable=False),
        sa.Column("valid_from", S, nullable=False),
        sa.Column("valid_until", S, nullable=True),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("added_at", S, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trusted_roots")
    op.drop_index("ix_certificates_fingerprint", table_name="certificates")
    op.drop_table("certificates")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("origin_store")
        batch.drop_column("origin_id")
