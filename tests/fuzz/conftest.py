"""The API fuzzing's hooks module (`fuzz_hooks`) is loaded by `st run`, not by pytest."""

collect_ignore = ["fuzz_hooks.py"]
