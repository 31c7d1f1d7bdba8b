"""Real access tokens for tests: signed by the runtime's own authorisation server, for a
registered client, verified by the FHIR API exactly as in production."""

from __future__ import annotations

from hygie.bootstrap import Runtime

__all__ = ["bearer"]


async def bearer(
    runtime: Runtime,
    *,
    kind: str = "system",
    scope: str = "system/*.cruds",
    fhir_user: str | None = None,
    patient: str | None = None,
    client_id: str = "hygie-tests",
    organization: str | None = None,
) -> dict[str, str]:
    """An ``Authorization`` header with a real token from this runtime's authorisation server
    (signed with its keys, for a registered client): by default a SMART backend service;
    with ``organization``, a backend client bound to that structure."""
    assert runtime.auth is not None
    if await runtime.auth.clients.get(client_id) is None:
        await runtime.auth.clients.register(
            name=client_id, scope=scope, with_secret=True, client_id=client_id, organization=organization
        )
    token, _ = await runtime.auth.tokens.issue(
        subject=fhir_user or client_id,
        client_id=client_id,
        kind=kind,
        scope=scope,
        fhir_user=fhir_user,
        patient=patient,
        organization=organization,
    )
    return {"Authorization": f"Bearer {token}"}
