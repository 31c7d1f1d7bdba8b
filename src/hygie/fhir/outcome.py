"""Errors and OperationOutcomes.

Every failure the FHIR layer reports is a :class:`FhirError` carrying an HTTP status and one or
more :class:`Issue`; ``web/`` turns it into an ``OperationOutcome`` body. Issue codes are the R4
``issue-type`` codes (http://hl7.org/fhir/R4/valueset-issue-type.html).

Exception tree::

    FhirError                  status + issues
    ├── InvalidRequest         400 malformed request, bad parameter
    ├── Unprocessable          422 content fails validation / business rules
    ├── NotFound               404 unknown type / id (also what "forbidden" looks like)
    ├── Gone                   410 deleted
    ├── Conflict               409 version conflict, duplicate id
    ├── PreconditionFailed     412 If-Match / conditional failures
    ├── Forbidden              403 refused by the access policy (only when existence is known)
    └── NotSupported           405 / 415 / 501
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Conflict",
    "FhirError",
    "Forbidden",
    "Gone",
    "InvalidRequest",
    "Issue",
    "NotFound",
    "NotSupported",
    "PreconditionFailed",
    "Unprocessable",
    "operation_outcome",
]

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue: ``expression`` is a FHIRPath to the faulty element."""

    code: str
    diagnostics: str
    expression: str | None = None
    severity: Severity = "error"

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


def operation_outcome(issues: list[Issue] | tuple[Issue, ...]) -> dict[str, Any]:
    """An OperationOutcome resource for these issues (at least one issue, as R4 requires)."""
    items = [i.to_fhir() for i in issues] or [
        {"severity": "information", "code": "informational", "diagnostics": "All OK"}
    ]
    return {"resourceType": "OperationOutcome", "issue": items}


class FhirError(Exception):
    """A failure with its HTTP status and the issues to report."""

    status: int = 400

    def __init__(
        self,
        diagnostics: str | list[Issue],
        *,
        code: str = "invalid",
        expression: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if isinstance(diagnostics, list):
            self.issues: list[Issue] = diagnostics
        else:
            self.issues = [Issue(code=code, diagnostics=diagnostics, expression=expression)]
        if status is not None:
            self.status = status
        self.headers = headers or {}
        super().__init__("; ".join(i.diagnostics for i in self.issues))

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


class InvalidRequest(FhirError):
    status = 400


class Unprocessable(FhirError):
    status = 422


class NotFound(FhirError):
    status = 404

    def __init__(self, diagnostics: str, **kwargs: Any) -> None:
        kwargs.setdefault("code", "not-found")
        super().__init__(diagnostics, **kwargs)


class Gone(FhirError):
    status = 410

    def __init__(self, diagnostics: str, **kwargs: Any) -> None:
        kwargs.setdefault("code", "deleted")
        super().__init__(diagnostics, **kwargs)


class Conflict(FhirError):
    status = 409

    def __init__(self, diagnostics: str, **kwargs: Any) -> None:
        kwargs.setdefault("code", "conflict")
        super().__init__(diagnostics, **kwargs)


class PreconditionFailed(FhirError):
    status = 412

    def __init__(self, diagnostics: str, **kwargs: Any) -> None:
        kwargs.setdefault("code", "conflict")
        super().__init__(diagnostics, **kwargs)


class Forbidden(FhirError):
    status = 403

    def __init__(self, diagnostics: str, **kwargs: Any) -> None:
        kwargs.setdefault("code", "forbidden")
        super().__init__(diagnostics, **kwargs)


class Unauthorized(FhirError):
    """No valid access token (RFC 6750 §3): 401 with a ``WWW-Authenticate`` challenge."""

    status = 401

    def __init__(self, description: str = "an access token is required", *, error: str | None = None) -> None:
        challenge = 'Bearer realm="hygie"'
        if error:
            safe = description.replace('"', "'")
            challenge += f', error="{error}", error_description="{safe}"'
        super().__init__(description, code="login", headers={"WWW-Authenticate": challenge})


class NotSupported(FhirError):
    status = 501

    def __init__(self, diagnostics: str, **kwargs: Any) -> None:
        kwargs.setdefault("code", "not-supported")
        super().__init__(diagnostics, **kwargs)
