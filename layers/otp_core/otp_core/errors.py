"""Error hierarchy of the core.

Every error a caller can cause maps to exactly one problem response (see ``otp_core.http``). Messages are
written for API clients: they never carry exception text, codes, tokens or full phone numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    """One invalid field of a request."""

    field: str
    message: str


class OtpError(Exception):
    """Base of every error that becomes a problem response."""

    status = 500
    code = "INTERNAL_ERROR"
    title = "Internal error"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidRequestError(OtpError):
    status, code, title = 400, "INVALID_REQUEST", "Invalid request"


class InvalidPhoneNumberError(OtpError):
    """Not a valid number, or a provider refused it; ``attempts``: provider attempts of the send (a refusal
    after a failover follows attempts that may have delivered)."""

    status, code, title = 400, "INVALID_PHONE_NUMBER", "Invalid phone number"
    attempts = 1


class UnsupportedCountryError(OtpError):
    status, code, title = 400, "UNSUPPORTED_COUNTRY", "Unsupported country"


class UnsupportedNumberTypeError(OtpError):
    status, code, title = 400, "UNSUPPORTED_NUMBER_TYPE", "Unsupported number type"


class InvalidMessageTemplateError(OtpError):
    status, code, title = 400, "INVALID_MESSAGE_TEMPLATE", "Invalid message template"


class UnauthorizedError(OtpError):
    status, code, title = 401, "UNAUTHORIZED", "Unauthorized"


class ForbiddenError(OtpError):
    status, code, title = 403, "FORBIDDEN", "Forbidden"


class NotFoundError(OtpError):
    status, code, title = 404, "NOT_FOUND", "Not found"


class ConflictError(OtpError):
    status, code, title = 409, "CONFLICT", "Conflict"


class RateLimitedError(OtpError):
    """A send, resend or verify limit was hit, or a lockout is in force."""

    status, code, title = 429, "RATE_LIMITED", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class DestinationBlockedError(OtpError):
    """The fraud guard blocks sends to the destination's bucket; nothing was sent or charged.

    ``level`` names the bucket level (``country`` or ``prefix``), never the number; ``trip`` is set when this
    very send tripped the bucket (the service records the block).
    """

    status, code, title = 403, "DESTINATION_BLOCKED", "Destination blocked"

    def __init__(self, level: str, *, trip: object | None = None) -> None:
        what = "this country" if level == "country" else "this number range"
        super().__init__(f"the fraud guard blocks SMS to {what} ({level} bucket); nothing was sent")
        self.level = level
        self.trip = trip


class SendBudgetExceededError(RateLimitedError):
    """An SMS budget of the app or the stack is spent for its current window; nothing was sent or charged."""

    code, title = "SEND_BUDGET_EXCEEDED", "SMS budget exceeded"


class DeliveryFailedError(OtpError):
    """No provider accepted the SMS; ``attempts`` is how many providers were tried (each may have billed)."""

    status, code, title = 502, "DELIVERY_FAILED", "Delivery failed"

    def __init__(self, detail: str, *, attempts: int = 1) -> None:
        super().__init__(detail)
        self.attempts = attempts


class DependencyError(OtpError):
    """An AWS dependency failed; the request had no effect and may be retried."""

    status, code, title = 503, "SERVICE_UNAVAILABLE", "Service unavailable"


@dataclass(frozen=True)
class Problem:
    """An RFC 9457 problem document."""

    status: int
    code: str
    title: str
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors:
            doc["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return doc


def to_problem(error: OtpError) -> Problem:
    """Map an error of the hierarchy to its problem document and headers."""
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimitedError) else {}
    return Problem(error.status, error.code, error.title, error.detail, list(error.errors), headers)
