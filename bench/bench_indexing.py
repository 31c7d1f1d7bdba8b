"""Measure search-index extraction speed over the Synthea bundles.

Usage: ``.venv/bin/python bench/bench_indexing.py [bundle folder] [max bundles]``. Prints the mean
microseconds per resource overall and per resource type (after a warm-up pass that compiles the
per-type plans).
"""

from __future__ import annotations

import gzip
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from hygie.fhir.indexing import extract_index

DEFAULT_FOLDER = Path("/work/shared/data/synthea-r4/bundles")


def load_resources(folder: Path, limit: int) -> list[dict[str, Any]]:
    """The resources of the first ``limit`` bundles of ``folder``."""
    resources: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json.gz"))[:limit]:
        bundle = orjson.loads(gzip.decompress(path.read_bytes()))
        resources.extend(entry["resource"] for entry in bundle.get("entry", []) if "resource" in entry)
    return resources


def main() -> None:
    """Run the benchmark and print the figures."""
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FOLDER
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    resources = load_resources(folder, limit)
    for resource in resources:  # warm-up: compile every plan
        extract_index(resource)
    per_type: dict[str, list[float]] = defaultdict(list)
    clock = time.perf_counter
    start = clock()
    for resource in resources:
        t0 = clock()
        extract_index(resource)
        per_type[resource["resourceType"]].append(clock() - t0)
    total = clock() - start
    print(f"{len(resources)} resources from {limit} bundles: {total / len(resources) * 1e6:.1f} µs/resource")
    for resource_type, times in sorted(per_type.items(), key=lambda item: -len(item[1])):
        print(f"  {resource_type:28} {len(times):7} x {sum(times) / len(times) * 1e6:8.1f} µs")


if __name__ == "__main__":
    main()
