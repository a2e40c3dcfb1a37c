"""Documents: deposit, read, destroy, metadata, check, list, count."""
