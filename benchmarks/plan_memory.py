"""Memory of the planner's duplicate-id scan, in bytes per input row (the figure docs/design.md quotes).

Hashes N synthetic ids the way `plan.scan` does (64-bit hash per id into a typed array, then
`find_duplicates`) under tracemalloc, which counts numpy's buffers, and prints the peak per row.

    python benchmarks/plan_memory.py --rows 1000000
"""
from __future__ import annotations

import argparse
import time
import tracemalloc
from array import array

import numpy as np

from jaspeech.builders.plan import find_duplicates
from jaspeech.synthesis.speakers import stable_hash


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--duplicate-every", type=int, default=1000, help="every K-th id repeats an earlier one")
    args = ap.parse_args()
    tracemalloc.start()
    t0 = time.perf_counter()
    hashes = array("Q")
    for i in range(args.rows):
        j = i - 1 if i and i % args.duplicate_every == 0 else i
        hashes.append(stable_hash("id", f"row-{j:09d}"))
    after_hashing = tracemalloc.get_traced_memory()[0]
    dups = find_duplicates(np.frombuffer(hashes, dtype=np.uint64))
    peak = tracemalloc.get_traced_memory()[1]
    seconds = time.perf_counter() - t0
    print(f"rows                         {args.rows:,}")
    print(f"duplicates found             {len(dups):,}")
    print(f"hash array                   {after_hashing / args.rows:.1f} bytes/row")
    print(f"peak during duplicate search {peak / args.rows:.1f} bytes/row (incl. the result dict)")
    print(f"time                         {seconds:.2f} s")


if __name__ == "__main__":
    main()
