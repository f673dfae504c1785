"""Files are fingerprinted with BLAKE3: source_files.sha256 becomes `digest`, which names its
algorithm ("blake3:<hex>"); the rows recorded before keep their SHA-256 as "sha256:<hex>".

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("source_files") as batch:
        batch.alter_column(
            "sha256",
            new_column_name="digest",
            existing_type=sa.String(length=64),
            type_=sa.String(length=80),
            existing_nullable=False,
        )
    op.execute("UPDATE source_files SET digest = 'sha256:' || digest")


def downgrade() -> None:
    # A BLAKE3 digest has no SHA-256 to go back to: the column keeps the hex digits only
    # (both prefixes, "sha256:" and "blake3:", are 7 characters).
    op.execute("UPDATE source_files SET digest = substr(digest, 8) WHERE digest LIKE '%:%'")
    with op.batch_alter_table("source_files") as batch:
        batch.alter_column(
            "digest",
            new_column_name="sha256",
            existing_type=sa.String(length=80),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
