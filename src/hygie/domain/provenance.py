"""Which app wrote a resource: ``meta.source`` set by the server, never by the app.

CNNum recommendation 12: the apps listed in the store write what they collect into the
person's record, and the record says where it came from. Every create, update and patch that a
third-party app makes through the FHIR API (alone or inside a batch or transaction Bundle) is
stored with ``meta.source = urn:hygie:app:<client_id>`` — the server's value, whatever the app
sent. Anyone else's write that carries such a value loses it, so nobody can pass their data off
as an app's — except the platform's operator restoring an export (``hygie import``), which keeps
what was recorded; any other ``meta.source`` (a sender's own system URI) is kept as sent.

The portals read it back with :func:`app_of` and name the app from the client registry.
Pure functions: ``fhir/interactions.py`` applies :func:`with_provenance` to every write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["APP_SOURCE_PREFIX", "app_of", "app_source", "with_provenance"]

APP_SOURCE_PREFIX: Final = "urn:hygie:app:"


def app_source(client_id: str) -> str:
    """The ``meta.source`` of what the app ``client_id`` writes."""
    return APP_SOURCE_PREFIX + client_id


def app_of(resource: Mapping[str, Any]) -> str | None:
    """The client id of the app that wrote ``resource`` (None: not written by an app)."""
    meta = resource.get("meta")
    source = meta.get("source") if isinstance(meta, Mapping) else None
    if (
        isinstance(source, str)
        and source.startswith(APP_SOURCE_PREFIX)
        and len(source) > len(APP_SOURCE_PREFIX)
    ):
        return source[len(APP_SOURCE_PREFIX) :]
    return None


def with_provenance(resource: dict[str, Any], app: str | None, *, keep: bool = False) -> dict[str, Any]:
    """``resource`` as it is stored when written through ``app`` (None: by anyone else).

    ``keep``: the writer is the platform's operator restoring data (``hygie import`` of an
    export): the provenance it carries is kept as it was recorded.

    Returns ``resource`` itself when nothing changes (the common case: no copy), else a shallow
    copy with a new ``meta``; the caller's dict is never modified."""
    meta = resource.get("meta")
    source = meta.get("source") if isinstance(meta, dict) else None
    if keep and app is None:
        return resource
    if app is not None:
        wanted = app_source(app)
        if source == wanted:
            return resource
        return {**resource, "meta": {**(meta if isinstance(meta, dict) else {}), "source": wanted}}
    if isinstance(meta, dict) and isinstance(source, str) and source.startswith(APP_SOURCE_PREFIX):
        return {**resource, "meta": {k: v for k, v in meta.items() if k != "source"}}
    return resource
