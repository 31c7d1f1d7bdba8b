"""``hygie import``: load FHIR data from files into the store, through the FHIR interactions.

Accepted inputs: ``.json`` (one resource, or a Bundle), ``.ndjson`` (one resource per line, as
FHIR Bulk Data exports), either optionally gzip-compressed (``.gz``), and folders of those
(recursively, in name order). Transaction and batch Bundles are processed as such (a transaction
is all or nothing); other resources — lone resources, NDJSON lines, entries of collection or
searchset Bundles — are written one by one with update-as-create (``PUT``) so that their ids are
kept, or created when they have none.

The result is an :class:`ImportReport`: counts of what was stored by type, and each rejected
resource with its reason (the OperationOutcome diagnostics).
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from hygie.domain.access import Caller
from hygie.fhir.interactions import FhirService
from hygie.fhir.outcome import FhirError
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route

__all__ = ["ImportReport", "Rejection", "import_paths", "iter_files"]

SUFFIXES = (".json", ".ndjson", ".json.gz", ".ndjson.gz")


@dataclass(frozen=True, slots=True)
class Rejection:
    source: str  # file[:line] or file#entry
    resource: str  # Type/id or Type
    reason: str


@dataclass
class ImportReport:
    stored: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejection] = field(default_factory=list)
    files: int = 0

    @property
    def stored_total(self) -> int:
        return sum(self.stored.values())


def iter_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
        elif path.is_file():
            yield path
        else:
            raise FileNotFoundError(f"{path} does not exist")


def _read(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return raw


def _describe(resource: Any) -> str:
    if isinstance(resource, dict):
        rtype = resource.get("resourceType", "?")
        rid = resource.get("id")
        return f"{rtype}/{rid}" if rid else str(rtype)
    return "?"


def _reason(error: FhirError) -> str:
    parts = []
    for issue in error.issues:
        where = f" at {issue.expression}" if issue.expression else ""
        parts.append(f"{issue.diagnostics}{where}")
    return "; ".join(parts) or str(error)


async def _one(
    service: FhirService, caller: Caller, resource: dict[str, Any], source: str, report: ImportReport
) -> None:
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        report.rejected.append(Rejection(source, "?", "no resourceType"))
        return
    rid = resource.get("id")
    method, path = ("PUT", f"{rtype}/{rid}") if isinstance(rid, str) and rid else ("POST", rtype)
    request = FhirRequest(method, path, [], {"prefer": "return=minimal"}, resource=resource, caller=caller)
    try:
        if rtype == "Bundle" and resource.get("type") in ("transaction", "batch"):
            await _bundle(service, caller, resource, source, report)
            return
        response = await route(service, request)
    except FhirError as error:
        report.rejected.append(Rejection(source, _describe(resource), _reason(error)))
        return
    if response.status < 300:
        report.stored[rtype] += 1
    else:
        report.rejected.append(Rejection(source, _describe(resource), f"status {response.status}"))


async def _bundle(
    service: FhirService, caller: Caller, bundle: dict[str, Any], source: str, report: ImportReport
) -> None:
    request = FhirRequest("POST", "", [], {"prefer": "return=minimal"}, resource=bundle, caller=caller)
    try:
        response = await route(service, request)
    except FhirError as error:
        entries = bundle.get("entry") or []
        reason = _reason(error)
        report.rejected.append(
            Rejection(
                source, f"Bundle ({bundle.get('type')}, {len(entries)} entries, nothing stored)", reason
            )
        )
        return
    body = response.body if isinstance(response.body, dict) else {}
    for i, (entry, result) in enumerate(
        zip(bundle.get("entry") or [], body.get("entry") or [], strict=False)
    ):
        status = str(result.get("response", {}).get("status", ""))
        resource = entry.get("resource") or {}
        if status.startswith("2"):
            if entry.get("request", {}).get("method", "").upper() in ("POST", "PUT", "PATCH"):
                report.stored[str(resource.get("resourceType", "?"))] += 1
        else:
            outcome = result.get("response", {}).get("outcome", {})
            reason = (
                "; ".join(i.get("diagnostics", "") for i in outcome.get("issue", [])) or f"status {status}"
            )
            report.rejected.append(Rejection(f"{source}#entry{i}", _describe(resource), reason))


def _resources_in(data: Any) -> Iterator[tuple[str, Any]]:
    """Resources to write one by one from a parsed JSON document (non-transaction Bundles)."""
    if (
        isinstance(data, dict)
        and data.get("resourceType") == "Bundle"
        and data.get("type")
        not in (
            "transaction",
            "batch",
        )
    ):
        for i, entry in enumerate(data.get("entry") or []):
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield f"#entry{i}", entry["resource"]
    else:
        yield "", data


async def import_paths(
    service: FhirService,
    paths: list[Path],
    *,
    caller: Caller | None = None,
    progress: Callable[[Path, int], None] | None = None,
) -> ImportReport:
    """Import every file under ``paths``; ``progress(path, bytes)`` is called after each file."""
    who = caller or Caller.operator("hygie import")
    report = ImportReport()
    for path in iter_files(paths):
        report.files += 1
        try:
            raw = _read(path)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            report.rejected.append(Rejection(str(path), "?", f"cannot read the file: {exc}"))
            continue
        if path.name.endswith((".ndjson", ".ndjson.gz")):
            for n, line in enumerate(raw.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    resource = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    report.rejected.append(Rejection(f"{path}:{n}", "?", f"malformed JSON: {exc}"))
                    continue
                if not isinstance(resource, dict):
                    report.rejected.append(Rejection(f"{path}:{n}", "?", "a line must hold one JSON object"))
                    continue
                await _one(service, who, resource, f"{path}:{n}", report)
        else:
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                report.rejected.append(Rejection(str(path), "?", f"malformed JSON: {exc}"))
                continue
            if not isinstance(data, dict):
                report.rejected.append(Rejection(str(path), "?", "the file must hold one JSON object"))
                continue
            for suffix, resource in _resources_in(data):
                if not isinstance(resource, dict):
                    continue
                await _one(service, who, resource, f"{path}{suffix}", report)
        if progress is not None:
            progress(path, len(raw))
    return report
