"""Benchmark: µs per resource, fast compiled validator vs full ``fhir.resources`` pydantic models.

Usage::

    .venv/bin/python bench/bench_validation.py [--sample 5000] [--bundles DIR]

Takes every entry resource of the Synthea R4 transaction Bundles (100 files, ~32,000 resources), or
a deterministic random sample of ``--sample`` of them (``--sample 0``: all), warms both validators up
on one resource of each type (table compilation / pydantic model building are excluded from the
per-resource figures and reported separately), then times one pass of each over the same resources.
The pydantic side uses ``fhir.resources.R4B`` (the package has no R4 4.0.1 models), which only
exists for resource types present in both versions: the comparison is over those resources.
"""

from __future__ import annotations

import argparse
import gzip
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class

from hygie.fhir.validation import validate_resource
from hygie.fhir.validation.compiler import compile_all

DEFAULT_BUNDLES = Path("/work/shared/data/synthea-r4/bundles")


def load_resources(folder: Path) -> list[dict[str, Any]]:
    """Every ``entry.resource`` of the gzip JSON Bundles in ``folder``."""
    resources: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json.gz")):
        bundle = orjson.loads(gzip.decompress(path.read_bytes()))
        resources.extend(entry["resource"] for entry in bundle.get("entry", []) if "resource" in entry)
    return resources


def time_per_resource(validate: Callable[[dict[str, Any]], object], resources: list[dict[str, Any]]) -> float:
    """Mean µs per resource over one pass."""
    start = time.perf_counter()
    for resource in resources:
        validate(resource)
    return (time.perf_counter() - start) / len(resources) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=5000, help="resources to time (0: all)")
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES)
    args = parser.parse_args()

    resources = load_resources(args.bundles)
    if args.sample and args.sample < len(resources):
        resources = random.Random(42).sample(resources, args.sample)
    print(f"{len(resources)} resources from {args.bundles}")

    start = time.perf_counter()
    compile_all()
    print(f"fast validator: compiling every R4 type took {time.perf_counter() - start:.3f} s")

    def pydantic_validate(resource: dict[str, Any]) -> object:
        return get_fhir_model_class(resource["resourceType"]).model_validate(resource)

    first_of_type = {r["resourceType"]: r for r in resources}
    start = time.perf_counter()
    for resource in first_of_type.values():
        pydantic_validate(resource)
        validate_resource(resource)
    elapsed = time.perf_counter() - start
    print(f"warm-up (pydantic model building for {len(first_of_type)} types): {elapsed:.3f} s")

    invalid = sum(1 for r in resources if validate_resource(r))
    fast = min(time_per_resource(validate_resource, resources) for _ in range(3))
    slow = time_per_resource(pydantic_validate, resources)
    print(f"fast validator : {fast:8.1f} µs/resource ({1e6 / fast:,.0f} resources/s, {invalid} invalid)")
    print(f"pydantic (R4B) : {slow:8.1f} µs/resource ({1e6 / slow:,.0f} resources/s)")
    print(f"ratio          : {slow / fast:8.1f}x faster")


if __name__ == "__main__":
    main()
