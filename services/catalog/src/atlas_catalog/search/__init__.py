"""French full-text search over the prestations, in process, the same on PostgreSQL and SQLite."""
