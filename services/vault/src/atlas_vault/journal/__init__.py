"""The hash-chained journal of every verb, grant and consultation."""
