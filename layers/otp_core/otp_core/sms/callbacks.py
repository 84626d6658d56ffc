"""Delivery-status callbacks: the request as a provider sent it, and what each provider's reader must do.

A provider with status callbacks has a :class:`DeliveryCallback` in its vendor module (``twilio``, ``webhook``)
that verifies the provider's signature and reads the report; :class:`~otp_core.sms.reports.DeliveryReports`
picks it by the path's provider name and records the outcome.

Everything here is read from an unauthenticated request, so every read is total: a repeated, non-string,
non-ASCII or undecodable header, query value or body yields None (or an :class:`UnauthorizedError`), never an
exception that would answer 500. Header values are then checked against strict ASCII patterns with
:func:`strict_token` before any comparison, and comparisons are constant-time over bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from otp_core.errors import UnauthorizedError
from otp_core.ports import Clock

BAD_SIGNATURE = "the request signature is invalid"
DEFAULT_TOLERANCE_SECONDS = 300
# Whitespace a proxy may leave around a header value; only ASCII (str.strip() would also drop U+2003...).
_HEADER_WHITESPACE = " \t"


def bad_signature() -> UnauthorizedError:
    """The one answer to a request no provider could have signed (401, whatever was wrong with it)."""
    return UnauthorizedError(BAD_SIGNATURE)


@dataclass(frozen=True)
class CallbackRequest:
    """A provider's callback as API Gateway delivered it, kept as received for the signature check.

    Build it with :meth:`from_event`; the accessors apply the rules (one value per header, exact bytes).
    """

    headers: Mapping[str, tuple[object, ...]] = field(default_factory=dict)
    query: Mapping[object, object] | None = None
    body: bytes | None = b""
    path: str = ""

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> CallbackRequest:
        """Read an API Gateway REST (v1) proxy event; never raises, whatever the event holds."""
        context = event.get("requestContext")
        # requestContext.path is the path the client called (with the stage or custom-domain base path).
        path = context.get("path") if isinstance(context, Mapping) else None
        if not isinstance(path, str) or not path:
            path = event.get("path")
        query = event.get("multiValueQueryStringParameters")
        return cls(
            headers=_headers(event),
            query=dict(query) if isinstance(query, Mapping) else None,
            body=_body(event),
            path=path if isinstance(path, str) else "",
        )

    def header(self, name: str) -> str | None:
        """The one value of header ``name`` (any case), or None when it is absent, repeated or not a string.

        A signature or timestamp sent twice is ambiguous, so it verifies nothing.
        """
        values = self.headers.get(name.lower(), ())
        return values[0] if len(values) == 1 and isinstance(values[0], str) else None

    def query_values(self, required: str, *, optional: tuple[str, ...] = ()) -> dict[str, str] | None:
        """The query's values when it has parameter ``required`` and at most the ``optional`` ones besides, each
        given once as a string; None for any other query. Only URLs this service generated are signed."""
        if self.query is None or required not in self.query or not set(self.query) <= {required, *optional}:
            return None
        found: dict[str, str] = {}
        for name, listed in self.query.items():
            if not isinstance(name, str) or not isinstance(listed, list) or len(listed) != 1:
                return None
            if not isinstance(listed[0], str):
                return None
            found[name] = listed[0]
        return found

    def signed_body(self) -> bytes:
        """The body exactly as the provider sent it (what its signature covers).

        Raises
        ------
        UnauthorizedError
            A base64 body that does not decode, or a text body with no UTF-8 form (a lone surrogate): neither
            can be what a provider signed.
        """
        if self.body is None:
            raise bad_signature()
        return self.body

    def url(self) -> str:
        """``https://<Host><path>``: the URL the provider called (without its query)."""
        return f"https://{self.header('Host') or ''}{self.path}"


def _headers(event: Mapping[str, Any]) -> dict[str, tuple[object, ...]]:
    """Every header value by lower-cased name.

    API Gateway keeps only the last of repeated headers in ``headers`` and all of them in ``multiValueHeaders``,
    so the latter is read whenever it is present.
    """
    found: dict[str, list[object]] = {}
    multi = event.get("multiValueHeaders")
    if isinstance(multi, Mapping) and multi:
        for key, listed in multi.items():
            if isinstance(key, str):
                found.setdefault(key.lower(), []).extend(listed if isinstance(listed, list) else [listed])
    else:
        single = event.get("headers")
        for key, value in single.items() if isinstance(single, Mapping) else ():
            if isinstance(key, str):
                found.setdefault(key.lower(), []).append(value)
    return {name: tuple(values) for name, values in found.items()}


def _body(event: Mapping[str, Any]) -> bytes | None:
    """The raw body bytes; None when they cannot be what a provider signed (see :meth:`CallbackRequest.signed_body`)."""
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        return None
    try:
        if event.get("isBase64Encoded") is True:
            return base64.b64decode(body, validate=True)
        return body.encode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeEncodeError is a ValueError
        return None


def strict_token(value: object, pattern: re.Pattern[str]) -> str | None:
    """``value`` without surrounding ASCII whitespace if it is a ``str`` matching ``pattern`` exactly, else None.

    ``pattern`` is ASCII-only, so a match is safe to encode as ASCII and to pass to ``int()`` (``str.isdigit()``
    and ``int()`` also accept other scripts' digits, such as ``"²"`` or ``"١٢٣"``).
    """
    if not isinstance(value, str) or len(value) > 256:
        return None
    value = value.strip(_HEADER_WHITESPACE)
    return value if pattern.fullmatch(value) else None


def signed_json(body: bytes) -> Any:
    """A signed callback body as JSON, read strictly: UTF-8, no repeated name, no NaN or Infinity.

    Raises
    ------
    ValueError
        Any of those, or not JSON at all.
    RecursionError
        Nesting deeper than the interpreter allows.
    """
    return json.loads(body.decode("utf-8"), object_pairs_hook=_no_repeats, parse_constant=_no_constant)


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a repeated name")
    return document


def _no_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


@dataclass(frozen=True)
class DeliveryReport:
    """A verified outcome: the challenge, the provider's message ID (when it names one), ``delivered`` or
    ``failed``."""

    challenge_id: str
    message_id: str | None
    status: str
    # The send of the challenge the message was (OutgoingSms.send), when the provider carried it back; None for
    # a message sent before sends travelled with it.
    send: int | None = None


@dataclass(frozen=True)
class CallbackConfig:
    """What a reader needs besides the request and the provider's credential.

    Parameters
    ----------
    clock:
        Source of the current time (signed timestamps are checked against it).
    base_url:
        The public base URL of the callbacks (``delivery_callback_base_url``); empty to use the request's host.
    tolerance_seconds:
        How far a signed timestamp may be from now, either way.
    """

    clock: Clock
    base_url: str = ""
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS


class DeliveryCallback(ABC):
    """Verifies and reads one provider's delivery-status callbacks.

    Subclasses name the field of their section of the provider secret that verifies the signature
    (``credential``) and implement :meth:`read`.
    """

    credential: ClassVar[str]
    # A further field of the provider's secret section that says how its callbacks are signed (Vonage's
    # ``signatureMethod``): passed to :meth:`read` as ``signature_method`` when the reader names one.
    signature_method_field: ClassVar[str | None] = None

    def __init__(self, config: CallbackConfig) -> None:
        self._config = config

    @abstractmethod
    def read(self, request: CallbackRequest, credential: str) -> DeliveryReport | None:
        """The report in a correctly signed request; None for a progress report that changes nothing.

        Raises
        ------
        UnauthorizedError
            The request is not one this provider signed with ``credential`` (or is too old).
        InvalidRequestError
            It is signed, but its report is malformed.
        """
