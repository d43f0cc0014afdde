"""A suite run alone (`python -m devstack.bench.<suite>`): its own throwaway stack, its results kept in
bench/results/, its section of BENCHMARKS.md written in place of its last copy with the command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import git_commit, put_section, results_dir, save_json
from devstack.settings import get_dev_settings

#: What `--shared` adds to the machine line: its figures are a busy machine's.
SHARED = " (shared: other sessions and their tests ran on its 2 cores during this run)"


def main(module: str, doc: str, rates: list[int], run: Callable, section: Callable, begin: str, end: str) -> None:
    """`run(stack, rates, seconds)` on a throwaway stack, then `section(result, command, commit, note)`
    (from `begin` to `end`) into BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default=",".join(map(str, rates)))
    parser.add_argument("--shared", action="store_true", help="say in the section that the machine was shared")
    args = parser.parse_args()
    root = Path.cwd()
    command = (f"python -m devstack.bench.{module} --seconds {args.seconds:g} --rates {args.rates}"
               + (" --shared" if args.shared else ""))
    with BenchStack(root, get_dev_settings(), say=print) as stack:
        result = run(stack, [int(r) for r in args.rates.split(",")], args.seconds)
    out = results_dir(root, root / "bench" / "results")
    save_json(out / f"{module}.json", result)
    text = "\n".join(section(result, command, git_commit(root), SHARED if args.shared else ""))
    print(f"results: {out / f'{module}.json'}; published {put_section(root / 'BENCHMARKS.md', begin, end, text)}")
