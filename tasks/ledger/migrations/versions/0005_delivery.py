"""Delivery: claims, provider outcomes, fallbacks and call-task context on touches.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tasks.ledger.models import BigId, Json, UtcDateTime

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _touch_columns() -> list[sa.Column]:
    return [
        sa.Column("message_ref", sa.String(length=36), nullable=True),
        sa.Column("claim_token", sa.String(length=36), nullable=True),
        sa.Column("claimed_at", UtcDateTime(), nullable=True),
        sa.Column("sent_at", UtcDateTime(), nullable=True),
        sa.Column("error_code", sa.String(length=50), nullable=True),
        sa.Column("delivery_status", sa.String(length=20), nullable=True),
        sa.Column("delivery_at", UtcDateTime(), nullable=True),
        sa.Column("fallback_channel", sa.String(length=20), nullable=True),
        sa.Column("fallback_of", BigId, nullable=True),
        sa.Column("context", Json, nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("touches") as batch:
        for column in _touch_columns():
            batch.add_column(column)
        batch.create_unique_constraint("uq_touches_message_ref", ["message_ref"])


def downgrade() -> None:
    with op.batch_alter_table("touches") as batch:
        batch.drop_constraint("uq_touches_message_ref", type_="unique")
        for column in reversed(_touch_columns()):
            batch.drop_column(column.name)
