"""A document's content, read through the door and sent to the browser — for every portal.

Both portals open documents the same way: the first content of a DocumentReference, inline
(``attachment.data``) or in its Binary read as the visitor (so the access policy decides on the
content too), sent as a download with a safe name — or shown in the browser for the types it
renders itself, never as active content.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from hygie.domain.access import Caller
from hygie.domain.ens.documents import binary_id
from hygie.web.portal.door import Door

__all__ = ["INLINE_TYPES", "document_content", "file_response"]

INLINE_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png", "text/plain"})
_EXTENSIONS = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "text/plain": "txt",
    "application/fhir+json": "json",
    "application/json": "json",
    "text/xml": "xml",
    "application/xml": "xml",
    "application/hl7-v3+xml": "xml",
}


async def document_content(
    door: Door, caller: Caller, document: Mapping[str, Any]
) -> tuple[bytes, str] | None:
    """The first content's bytes and type, read as ``caller`` (None: not available)."""
    contents = [c for c in document.get("content") or [] if isinstance(c, dict)]
    if not contents:
        return None
    attachment = contents[0].get("attachment") or {}
    declared = str(attachment.get("contentType") or "")
    if isinstance(attachment.get("data"), str):
        try:
            return base64.b64decode(attachment["data"], validate=True), declared
        except (binascii.Error, ValueError):
            return None
    found = binary_id(document)
    if found is None:
        return None
    binary = await door.read(caller, "Binary", found)
    if binary is None or not isinstance(binary.get("data"), str):
        return None
    try:
        data = base64.b64decode(binary["data"], validate=True)
    except (binascii.Error, ValueError):
        return None
    return data, str(binary.get("contentType") or declared)


def file_response(data: bytes, declared: str, title: str, *, inline: bool) -> Response:
    """The content as a download named after ``title`` (or shown, for the types a browser shows
    safely); a download is sandboxed so that nothing in it runs in the portal's origin."""
    media = declared.split(";", maxsplit=1)[0].strip().lower() or "application/octet-stream"
    extension = _EXTENSIONS.get(media, "bin")
    stem = re.sub(r"[^\w\- ]+", "", title, flags=re.UNICODE).strip()[:80] or "document"
    ascii_stem = stem.encode("ascii", "ignore").decode() or "document"
    inline = inline and media in INLINE_TYPES
    disposition = "inline" if inline else "attachment"
    headers = {
        "Content-Disposition": (
            f"{disposition}; filename=\"{ascii_stem}.{extension}\"; filename*=UTF-8''{quote(stem)}.{extension}"
        ),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    if not inline:
        headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    if media == "text/plain":
        media = "text/plain; charset=utf-8"
    return Response(
        data,
        media_type=media if inline or media.split(";")[0] in INLINE_TYPES else "application/octet-stream",
        headers=headers,
    )
