"""The decision engine: case state, the plan's view of touches, holds and suppressions.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tasks.ledger.models import BigId, Money, UtcDateTime

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _case_columns() -> list[sa.Column]:
    return [
        sa.Column("case_key", sa.String(length=160), nullable=True),
        sa.Column("status_reason", sa.String(length=300), nullable=True),
        sa.Column("stage_since", sa.Date(), nullable=True),
        sa.Column("segment", sa.String(length=100), nullable=True),
        sa.Column("amount", Money, nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("renewal_date", sa.Date(), nullable=True),
        sa.Column("open_invoices", sa.Integer(), nullable=True),
        sa.Column("worst_days_overdue", sa.Integer(), nullable=True),
        sa.Column("promise_at", UtcDateTime(), nullable=True),
        sa.Column("broken_promise_on", sa.Date(), nullable=True),
    ]


def _touch_columns() -> list[sa.Column]:
    return [
        sa.Column("case_key", sa.String(length=160), nullable=True),
        sa.Column("account_id", sa.String(length=100), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("send_at_local", sa.String(length=100), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for column in _case_columns():
            batch.add_column(column)
        batch.create_unique_constraint("uq_cases_case_key", ["case_key"])
    with op.batch_alter_table("touches") as batch:
        for column in _touch_columns():
            batch.add_column(column)
        batch.create_index("ix_touches_case_key", ["case_key"])
    op.create_table(
        "holds",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_holds"),
    )
    op.create_index("ix_holds_account_id", "holds", ["account_id"])
    op.create_table(
        "suppressions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("golden_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=True),
        sa.Column("run_id", BigId, nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_suppressions_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_suppressions"),
        sa.UniqueConstraint("golden_id", "channel", name="uq_suppressions_golden_id_channel"),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_index("ix_holds_account_id", table_name="holds")
    op.drop_table("holds")
    with op.batch_alter_table("touches") as batch:
        batch.drop_index("ix_touches_case_key")
        for column in reversed(_touch_columns()):
            batch.drop_column(column.name)
    with op.batch_alter_table("cases") as batch:
        batch.drop_constraint("uq_cases_case_key", type_="unique")
        for column in reversed(_case_columns()):
            batch.drop_column(column.name)
