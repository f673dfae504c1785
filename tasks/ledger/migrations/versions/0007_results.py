"""Results by objective: the holdout group and opening amount of each case, and daily
receivables by currency and aging bucket.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tasks.ledger.models import BigId, Money

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("holdout", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("opening_amount", Money, nullable=True))
    op.create_table(
        "receivables",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("run_id", BigId, nullable=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("bucket", sa.String(length=20), nullable=False),
        sa.Column("open_amount", Money, nullable=False),
        sa.Column("invoices", sa.Integer(), nullable=False),
        sa.Column("invoiced_90d", Money, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_receivables_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receivables")),
        sa.UniqueConstraint(
            "as_of", "currency", "bucket", name=op.f("uq_receivables_as_of_currency_bucket")
        ),
    )


def downgrade() -> None:
    op.drop_table("receivables")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("opening_amount")
        batch.drop_column("holdout")
