"""Local infrastructure for ATLAS development and tests: Kafka, PostgreSQL, `make run`, fixtures."""
