"""The ledger: Cadencia's own database (SQLite embedded, PostgreSQL in production).

`db` connects and migrates, `models` defines the tables, `runs` holds the ingestion's writes.
"""
