"""The milestone policy: when each step of a handler case is due, kept as data."""
