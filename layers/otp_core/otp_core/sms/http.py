"""Vendor HTTP: one POST per attempt through a pooled urllib3 client, with the failure split failover needs.

urllib3 is already in the Lambda runtime (botocore is built on it) and already imported by the time an adapter
runs, so it costs no extra cold start. One module-level :class:`urllib3.PoolManager` keeps each vendor's TLS
connection open between sends on a warm instance. It never retries (failover to the next provider is the
retry) and never follows redirects (a redirected POST would resend credentials and the code to a URL nobody
configured; the 3xx is an answer the adapter does not accept). The helper tells the two kinds of transport
failure apart:

- the request never reached the vendor (DNS failure, connection refused, connect timeout, TLS failure): the
  message cannot have been accepted, so another provider may send it;
- the request was sent and no complete answer came back (read timeout, connection dropped): the vendor may
  have accepted it. :class:`TransportError` carries ``sent=True`` so callers can log it as ambiguous. A TLS
  handshake that stalls past the connect timeout is also reported as a ``timeout`` (urllib3 raises the same
  error for it): the failover is the same either way, only the log line is more cautious than it need be.
"""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationValueError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

if TYPE_CHECKING:
    from urllib3.response import BaseHTTPResponse

USER_AGENT = "sms-otp/1.0"
# Vendor replies are small JSON documents; a cap keeps a misbehaving endpoint from filling the memory.
MAX_REPLY_BYTES = 64 * 1024
# Like the SNS client's: a vendor that cannot take a connection within 2 s is down; the read may take the
# attempt's whole timeout.
CONNECT_TIMEOUT_SECONDS = 2.0

# A kept-alive connection idle for longer may have been closed by the vendor's front end (or while Lambda froze
# the instance) without this side noticing; with no retries its reuse would fail a send that never left, so an
# idle origin starts afresh. Bursts of sends still share one TLS connection.
IDLE_REUSE_SECONDS = 15.0

# One pool per vendor origin, kept for the life of the instance (Lambda runs one request at a time per
# instance, so one connection per origin is enough).
_POOL = urllib3.PoolManager(num_pools=10, maxsize=1, retries=False, cert_reqs="CERT_REQUIRED")
# Origin -> wall-clock time of its last request (the monotonic clock may stand still while Lambda is frozen).
_LAST_USED: dict[str, float] = {}


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
        Seconds allowed for each blocking read (and for connecting, up to :data:`CONNECT_TIMEOUT_SECONDS`).

    Raises
    ------
    TransportError
        No complete answer; ``sent`` says whether the vendor may have received the request. Reason ``config``
        when the URL is not allowed (see :func:`check_url`).
    """
    check_url(url)
    _forget_idle_connections(url)
    limits = urllib3.Timeout(connect=min(timeout, CONNECT_TIMEOUT_SECONDS), read=timeout)
    try:
        response = _POOL.urlopen(
            "POST",
            url,
            body=body,
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=limits,
            retries=False,
            redirect=False,
            preload_content=False,
        )
    except LocationValueError as error:
        raise TransportError("config", sent=False) from error
    except (ConnectTimeoutError, SSLError) as error:
        # Connection refused, DNS, connect timeout (NewConnectionError is a ConnectTimeoutError) or the TLS
        # handshake: the request was never sent.
        raise TransportError("connect", sent=False) from error
    except ReadTimeoutError as error:
        raise TransportError("timeout", sent=True) from error
    except (ProtocolError, HTTPError) as error:
        raise TransportError("dropped", sent=True) from error
    return _complete(response)


def _forget_idle_connections(url: str) -> None:
    """Close the pooled connections when this origin has been idle past :data:`IDLE_REUSE_SECONDS`."""
    parts = urllib.parse.urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    now = time.time()
    if now - _LAST_USED.get(origin, now) > IDLE_REUSE_SECONDS:
        # Closes every origin's connections; the pools open new ones on their next request.
        _POOL.clear()
    _LAST_USED[origin] = now


def _complete(response: BaseHTTPResponse) -> HttpReply:
    """Read the answer (at most :data:`MAX_REPLY_BYTES`) and give the connection back, or drop it."""
    complete = False
    try:
        data = response.read(MAX_REPLY_BYTES)
        # Only a connection whose answer was read to its end may serve the next request.
        complete = not response.read(1)
    except ReadTimeoutError as error:
        raise TransportError("timeout", sent=True) from error
    except HTTPError as error:
        raise TransportError("dropped", sent=True) from error
    finally:
        if not complete:
            response.close()
        response.release_conn()
    headers = {str(name).lower(): str(value) for name, value in response.headers.items()}
    return HttpReply(int(response.status), data, headers)


def form_body(fields: Mapping[str, str]) -> bytes:
    """``application/x-www-form-urlencoded`` encoding of ``fields``."""
    return urllib.parse.urlencode(fields).encode("ascii")


def json_body(document: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
