"""Portal forms: CSRF, one submission per form, messages carried to the next page, uploads.

* Every form carries the session's CSRF token (``visitor.csrf``) and a one-time ``jeton``
  (:meth:`Forms.token`). The first POST with a ``jeton`` claims it atomically (``kv.add``); a
  second POST of the same form (double click, reload, retry) creates nothing and is sent to the
  page the first one led to.
* A page that redirects after a POST leaves a message (:meth:`Forms.flash`) that the next page
  shows once.
* A form that fails is shown again with what was typed and, per field, what is wrong in plain
  French (:class:`FormErrors`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hygie.ports import KeyValueStore

__all__ = ["FormErrors", "Forms", "Submitted", "Upload"]

_ONCE_KIND = "portal-form"
_FLASH_KIND = "portal-flash"
_ONCE_TTL_US = 24 * 3600 * 1_000_000


@dataclass(slots=True)
class FormErrors:
    """Per-field messages (``field`` → French sentence) and a summary for the top of the form."""

    fields: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.fields)


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class Submitted:
    """A posted form: its text fields and its files (read, size-limited)."""

    values: dict[str, str]
    lists: dict[str, list[str]]
    files: dict[str, Upload]
    too_large: set[str] = field(default_factory=set)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default).strip()


class Forms:
    def __init__(self, kv: KeyValueStore, clock: Callable[[], int], *, max_upload_bytes: int) -> None:
        self.kv = kv
        self.clock = clock
        self.max_upload_bytes = max_upload_bytes

    @staticmethod
    def token() -> str:
        """A fresh one-time token for a form (hidden field ``jeton``)."""
        return secrets.token_urlsafe(16)

    async def read(self, request: Request) -> Submitted:
        """The posted fields; files above the upload limit are dropped and named in ``too_large``."""
        form = await request.form(max_files=10, max_fields=200, max_part_size=self.max_upload_bytes + 1024)
        values: dict[str, str] = {}
        lists: dict[str, list[str]] = {}
        files: dict[str, Upload] = {}
        too_large: set[str] = set()
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if not value.filename:
                    continue
                data = await value.read(self.max_upload_bytes + 1)
                if len(data) > self.max_upload_bytes:
                    too_large.add(name)
                    continue
                files[name] = Upload(value.filename, value.content_type or "application/octet-stream", data)
            else:
                values.setdefault(name, value)
                lists.setdefault(name, []).append(value)
        await form.close()  # the uploads' temporary files, now read
        return Submitted(values, lists, files, too_large)

    async def claim(self, session_id: str, submitted: Submitted) -> Response | None:
        """Claim the form's one-time token. None: go on. A response: this form was already sent
        (to the page the first submission led to, or back to the form while it runs)."""
        jeton = submitted.get("jeton")
        if not jeton:
            return None
        key = f"{session_id}:{jeton}"
        if await self.kv.add(_ONCE_KIND, key, {"done": None}, expires_us=self.clock() + _ONCE_TTL_US):
            return None
        record = await self.kv.get(_ONCE_KIND, key) or {}
        await self.flash(
            session_id, "Ce formulaire a déjà été envoyé : rien n’a été enregistré une seconde fois."
        )
        return RedirectResponse(record.get("done") or submitted.get("retour") or "/ens", status_code=303)

    async def release(self, session_id: str, submitted: Submitted) -> None:
        """The form failed: let the person send it again once corrected."""
        jeton = submitted.get("jeton")
        if jeton:
            await self.kv.delete(_ONCE_KIND, f"{session_id}:{jeton}")

    async def done(
        self, session_id: str, submitted: Submitted, location: str, message: str | None = None
    ) -> Response:
        """The form succeeded: remember where it led (for a repeat), leave a message, redirect."""
        jeton = submitted.get("jeton")
        if jeton:
            await self.kv.put(
                _ONCE_KIND,
                f"{session_id}:{jeton}",
                {"done": location},
                expires_us=self.clock() + _ONCE_TTL_US,
            )
        if message:
            await self.flash(session_id, message)
        return RedirectResponse(location, status_code=303)

    async def flash(self, session_id: str, message: str, level: str = "success") -> None:
        record = await self.kv.get(_FLASH_KIND, session_id) or {"messages": []}
        record["messages"] = [*record["messages"], {"text": message, "level": level}][-5:]
        await self.kv.put(_FLASH_KIND, session_id, record, expires_us=self.clock() + 3600 * 1_000_000)

    async def messages(self, session_id: str) -> list[dict[str, Any]]:
        record = await self.kv.take(_FLASH_KIND, session_id)
        return list(record["messages"]) if record else []
