"""Unified contacts: survivorship details, roles and merges on golden contacts.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tasks.ledger.models import UtcDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _columns() -> list[sa.Column]:
    return [
        sa.Column("account_name", sa.String(length=200), nullable=True),
        sa.Column("email_role", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("email_typo_of", sa.String(length=100), nullable=True),
        sa.Column("mobile_type", sa.String(length=20), nullable=True),
        sa.Column("last_modified", UtcDateTime(), nullable=True),
        sa.Column("records", sa.Integer(), server_default="1", nullable=False),
        sa.Column("systems", sa.String(length=50), nullable=True),
        sa.Column("collections_tier", sa.Integer(), nullable=True),
        sa.Column("renewals_tier", sa.Integer(), nullable=True),
        sa.Column("receives_collections", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("receives_renewals", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("merged_into", sa.String(length=64), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        for column in _columns():
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        for column in reversed(_columns()):
            batch.drop_column(column.name)
