"""`python -m bench [names...]`: run every `bench/bench_*.py` (or the named ones), print one table.

Each module exposes `async def run(quick: bool) -> list[Result]`; it starts what it needs (the jar
broker and PostgreSQL through atlas_devstack) and measures its raw baseline in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pkgutil
from pathlib import Path

from bench.common import Result, print_table, write_json


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help="e.g. catalog requests (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    here = Path(__file__).parent
    modules = sorted(
        m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")
    )
    if args.names:
        modules = [m for m in modules if m.removeprefix("bench_") in args.names]
    results: list[Result] = []
    for name in modules:
        module = importlib.import_module(f"bench.{name}")
        print(f"running {name}…", flush=True)
        results.extend(asyncio.run(module.run(args.quick)))
    print_table(results)
    write_json(results, here / "results" / "latest.json")


if __name__ == "__main__":
    main()
