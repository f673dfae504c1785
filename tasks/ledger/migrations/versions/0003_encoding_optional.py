"""XLSX and Parquet exports have no text encoding: source_files.encoding becomes optional.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("source_files") as batch:
        batch.alter_column("encoding", existing_type=sa.String(length=50), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE source_files SET encoding = 'n/a' WHERE encoding IS NULL")
    with op.batch_alter_table("source_files") as batch:
        batch.alter_column("encoding", existing_type=sa.String(length=50), nullable=False)
