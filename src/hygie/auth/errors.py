"""OAuth 2 errors (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1)."""

from __future__ import annotations

__all__ = ["OAuthError"]


class OAuthError(Exception):
    """An error answered as RFC 6749 says: JSON ``{"error", "error_description"}``.

    ``status`` is 400 for most token-endpoint errors and 401 for ``invalid_client``; at the
    authorisation endpoint, ``redirect`` says whether the error may be sent back to the client's
    redirect URI (only once the client and its redirect URI are known to be valid).
    """

    def __init__(self, error: str, description: str, *, status: int = 400, redirect: bool = False) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.redirect = redirect

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}
