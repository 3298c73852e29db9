"""Personal data of case entities, per-recipient export keys, storage locations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = sa.String()


def upgrade() -> None:
    op.create_table(
        "nominal_records",
        sa.Column("entity_id", S, primary_key=True, nullable=False),
        sa.Column("case_no", S, sa.ForeignKey("cases.case_no"), nullable=False),
        sa.Column("salt", S, nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("updated_at", S, nullable=False),
    )
    op.create_index("ix_nominal_records_case", "nominal_records", ["case_no"])
    op.create_table(
        "export_keys",
        sa.Column("recipient", S, primary_key=True, nullable=False),
        sa.Column("key", S, nullable=False),
        sa.Column("created_at", S, nullable=False),
    )
    op.create_table(
        "storage_locations",
        sa.Column("code", S, primary_key=True, nullable=False),
        sa.Column("name", S, nullable=False),
        sa.Column("kind", S, nullable=False),
        sa.Column("parent", S, sa.ForeignKey("storage_locations.code"), nullable=True),
        sa.Column("created_at", S, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("storage_locations")
    op.drop_table("export_keys")
    op.drop_index("ix_nominal_records_case", table_name="nominal_records")
    op.drop_table("nominal_records")
