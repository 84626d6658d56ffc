"""A small HTTP POST over the standard library, with the failure split the failover logic needs.

urllib.request is enough for one POST per attempt and keeps the layer free of another HTTP client. The helper
tells the two kinds of transport failure apart:

- the request never fully reached the vendor (DNS failure, connection refused, connect timeout, TLS failure):
  the message cannot have been accepted, so another provider may send it;
- the request was sent and no complete answer came back (read timeout, connection dropped): the vendor may
  have accepted it. :class:`TransportError` carries ``sent=True`` so callers can log it as ambiguous.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

USER_AGENT = "sms-otp/1.0"
# Vendor replies are small JSON documents; a cap keeps a misbehaving endpoint from filling the memory.
MAX_REPLY_BYTES = 64 * 1024


@dataclass(frozen=True)
class HttpReply:
    """A complete HTTP answer: status, lower-cased headers and body."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None


class TransportError(Exception):
    """No complete HTTP answer.

    Parameters
    ----------
    reason:
        ``connect`` or ``config`` (never reached the vendor), ``timeout`` or ``dropped`` (sent, no answer).
    sent:
        True when the vendor may have received the whole request.
    """

    def __init__(self, reason: str, *, sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect of a POST would resend credentials and the code to a URL nobody configured: treat it as an
    # answer (a 3xx the adapter does not accept) instead of following it.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def check_url(url: str) -> None:
    """Refuse URLs that would carry credentials or codes in clear text.

    Plain ``http`` is allowed for loopback hosts only (the local fakes); everything else must be ``https``.

    Raises
    ------
    TransportError
        Reason ``config`` (never sent): another scheme, plain http to a non-loopback host, or no host.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and _is_loopback(host):
        return
    raise TransportError("config", sent=False)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def post(url: str, *, body: bytes, headers: Mapping[str, str], timeout: float) -> HttpReply:
    """POST ``body`` to ``url`` and return the answer, whatever its status.

    Parameters
    ----------
    url:
        Absolute https URL (http for loopback only).
    body:
        The encoded request body.
    headers:
        Request headers; ``User-Agent`` is added.
    timeout:
        Seconds allowed for each blocking network operation (connect, send, each read).

    Raises
    ------
    TransportError
        No complete answer; ``sent`` says whether the vendor may have received the request. Reason ``config``
        when the URL is not allowed (see :func:`check_url`).
    """
    check_url(url)
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=body, headers={"User-Agent": USER_AGENT, **headers}, method="POST"
    )
    try:
        response: Any = _OPENER.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        # A non-2xx status is still an answer; its body says what the vendor thinks went wrong.
        response = error
    except urllib.error.URLError as error:
        # urllib wraps only failures up to and including sending the request: the vendor never got all of it.
        raise TransportError("connect", sent=False) from error
    except TimeoutError as error:
        raise TransportError("timeout", sent=True) from error
    except (OSError, http.client.HTTPException) as error:
        raise TransportError("dropped", sent=True) from error
    try:
        with response:
            return HttpReply(int(response.getcode()), _read(response), _headers(response.headers))
    except TimeoutError as error:
        raise TransportError("timeout", sent=True) from error
    except (OSError, http.client.HTTPException) as error:
        raise TransportError("dropped", sent=True) from error


def _read(response: Any) -> bytes:
    data: bytes = response.read(MAX_REPLY_BYTES)
    return data


def _headers(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()} if headers is not None else {}


def form_body(fields: Mapping[str, str]) -> bytes:
    """``application/x-www-form-urlencoded`` encoding of ``fields``."""
    return urllib.parse.urlencode(fields).encode("ascii")


def json_body(document: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
