"""Loading the committed reference data into the database, publishing only what changed."""
