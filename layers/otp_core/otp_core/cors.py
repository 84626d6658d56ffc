"""CORS for the client routes: browsers at an app's ``allowedOrigins`` may call them, no other origin may.

The client routes take a client token in ``Authorization`` and no cookie, so CORS here never allows
credentials. A preflight carries no token, so it cannot name an app: it is allowed for the origins of every live
app (what a preflight permits is only sending the request). The answer to the request itself names the app
through its verified token, and lets the browser read it only from that app's origins; an answer that names no
app (a missing, forged or expired token) is readable from every live app's origins, so a browser client can tell
an expired link from a network failure. Server, admin and callback routes send no CORS header at all.

Origins compare exactly as browsers serialise them (``scheme://host[:port]``, lower case, no default port); the
settings' validation keeps the stored ones in that form, and ``null`` is never allowed.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from otp_core.errors import ForbiddenError

if TYPE_CHECKING:
    from otp_core.http import Headers, Response

ALLOWED_METHODS = "POST"
ALLOWED_HEADERS = "Authorization, Content-Type"
EXPOSED_HEADERS = "Retry-After"
# Browsers keep a preflight's answer this long (Chrome at most 2 hours); the answer to the request itself is
# decided per request, so an origin removed from an app stops reading its answers within the policy cache.
MAX_AGE_SECONDS = 600
_VARY = {"Vary": "Origin"}


def allows(origin: str | None, origins: Collection[str]) -> bool:
    """Whether a request's ``Origin`` header is one of ``origins`` (exactly; ``null`` never is)."""
    return bool(origin) and origin != "null" and origin in origins


def response_headers(origin: str | None, origins: Collection[str]) -> dict[str, str]:
    """The CORS headers of the answer to a client route's request from ``origin``.

    ``Vary: Origin`` always (the answer depends on it); the allow and expose headers only for an allowed origin.
    """
    if origin is None or not allows(origin, origins):
        return dict(_VARY)
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSED_HEADERS, **_VARY}


def preflight_headers(origin: str | None, method: str | None, origins: Collection[str]) -> dict[str, str]:
    """The headers of a ``204`` answer to a preflight of ``method`` from ``origin``.

    Raises
    ------
    ForbiddenError
        The origin is not one of ``origins``, or the preflight asks for a method other than POST: the browser
        then refuses the request, and the problem body says why to whoever reads the network panel.
    """
    if origin is None or not allows(origin, origins):
        raise ForbiddenError("this origin is not in any app's allowedOrigins")
    if method != ALLOWED_METHODS:
        raise ForbiddenError("the client routes allow only POST from a browser")
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        **_VARY,
    }


def preflight(headers: Headers, origins: Collection[str]) -> Response:
    """The answer to an OPTIONS request of a client route: a browser's preflight from one of ``origins`` is a
    ``204`` with :func:`preflight_headers`; an OPTIONS without ``Origin`` (no browser's) lists the methods.

    Raises
    ------
    ForbiddenError
        As :func:`preflight_headers`.
    """
    from otp_core.http import Response

    origin = headers.get("Origin")
    if origin is None:
        return Response(204, headers={"Allow": "OPTIONS, POST", "Vary": "Origin"})
    return Response(204, headers=preflight_headers(origin, headers.get("Access-Control-Request-Method"), origins))
