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
    # A BLAKE3 digest has no SHA-256 to go back to, and without its prefix it would pass for
    # one (an upgrade again would label it sha256): refuse instead of mislabelling.
    blake3_rows = (
        op.get_bind()
        .execute(sa.text("SELECT count(*) FROM source_files WHERE digest LIKE 'blake3:%'"))
        .scalar_one()
    )
    if blake3_rows:
        raise RuntimeError(
            f"cannot downgrade below 0008: {blake3_rows} file(s) were recorded with a BLAKE3 "
            "digest, which the older sha256 column cannot hold; delete those source_files "
            "rows (or their runs) first if the downgrade is really needed"
        )
    op.execute("UPDATE source_files SET digest = substr(digest, 8) WHERE digest LIKE 'sha256:%'")
    with op.batch_alter_table("source_files") as batch:
        batch.alter_column(
            "digest",
            new_column_name="sha256",
            existing_type=sa.String(length=80),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
