"""Measure search-index extraction speed over the Synthea bundles.

Usage: ``.venv/bin/python bench/bench_indexing.py [bundle folder] [max bundles] [passes]``.

The bundles' ``urn:uuid:`` references are first rewritten to ``Type/id`` as a transaction does
before indexing, so that references and compartments are extracted as in production. After a
warm-up pass (which compiles the per-type plans), the resources are indexed ``passes`` times;
the best pass is reported (the machine may be shared), overall and per resource type, in
microseconds per resource.
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


def _rewrite(node: Any, local: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                local.get(value, value)
                if key == "reference" and isinstance(value, str)
                else _rewrite(value, local)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite(value, local) for value in node]
    return node


def load_resources(folder: Path, limit: int) -> list[dict[str, Any]]:
    """The resources of the first ``limit`` bundles of ``folder``, references resolved."""
    resources: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json.gz"))[:limit]:
        bundle = orjson.loads(gzip.decompress(path.read_bytes()))
        entries = [entry for entry in bundle.get("entry", []) if "resource" in entry]
        local = {
            entry["fullUrl"]: f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
            for entry in entries
            if "fullUrl" in entry and "id" in entry["resource"]
        }
        resources.extend(_rewrite(entry["resource"], local) for entry in entries)
    return resources


def main() -> None:
    """Run the benchmark and print the figures."""
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FOLDER
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    passes = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    resources = load_resources(folder, limit)
    for resource in resources:  # warm-up: compile every plan
        extract_index(resource)
    clock = time.perf_counter
    best_total = float("inf")
    best_per_type: dict[str, float] = defaultdict(lambda: float("inf"))
    counts: dict[str, int] = defaultdict(int)
    for resource in resources:
        counts[resource["resourceType"]] += 1
    for _ in range(passes):
        per_type: dict[str, float] = defaultdict(float)
        start = clock()
        for resource in resources:
            t0 = clock()
            extract_index(resource)
            per_type[resource["resourceType"]] += clock() - t0
        best_total = min(best_total, clock() - start)
        for resource_type, spent in per_type.items():
            best_per_type[resource_type] = min(best_per_type[resource_type], spent)
    print(
        f"{len(resources)} resources from {limit} bundles, best of {passes}: "
        f"{best_total / len(resources) * 1e6:.1f} µs/resource"
    )
    for resource_type, count in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"  {resource_type:28} {count:7} x {best_per_type[resource_type] / count * 1e6:8.1f} µs")


if __name__ == "__main__":
    main()
