"""Benchmarks of the ATLAS platform: each figure beside a raw baseline measured in the same run."""
