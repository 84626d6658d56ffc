"""The HTTP contract over a real socket: against the local stack (a child process) or, when API_URL is set,
against a deployed stack (API_KEY holds its key; tests that read SMS from the local outbox, use the local
identity provider or sign with the stack's own key are skipped)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from local.iam import DENIAL_MARKER
from local.idp import load_or_create_key, mint_token
from local.stack import LocalStackProcess, spawn_local_stack
from tests.numbers import fresh_numbers

# Adaptive MFA rules of the e2e stack (the TrackRules format, see otp_core.rules): a risk score over 90 blocks
# every action; "withdraw" is allowed on a known device and needs a challenge on a device never seen before.
E2E_TRACK_RULES = {
    "actions": {
        "withdraw": {
            "default": "ALLOW",
            "rules": [
                {"outcome": "BLOCK", "when": [{"attribute": "custom.riskScore", "op": "gt", "value": 90}]},
                {"outcome": "CHALLENGE_REQUIRED", "when": [{"attribute": "deviceId", "op": "newDevice"}]},
            ],
        }
    },
    "default": {
        "default": "ENROLLED_CHALLENGE",
        "rules": [{"outcome": "BLOCK", "when": [{"attribute": "custom.riskScore", "op": "gt", "value": 90}]}],
    },
}

# Policy of the e2e stack: France is blocked so UNSUPPORTED_COUNTRY can be shown over HTTP.
# Every e2e request comes from 127.0.0.1, so the per-IP cap of end-user endpoints is lifted here; the
# integration tests cover that cap.
E2E_POLICY = {
    "BLOCKED_COUNTRIES": "FR",
    "TRACK_RULES": json.dumps(E2E_TRACK_RULES),
    "MAX_SENDS_PER_IP_PER_HOUR": "100000",
    # The one sender ID end users may pick on /v1/verification/sms/send (any other is a 400).
    "END_USER_SENDER_IDS": "Acme",
}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Api:
    url: str
    api_key: str
    local: bool
    aws_endpoint: str = ""
    process: LocalStackProcess | None = None
    # The operators' key of /v1/admin (ADMIN_KEY against a deployed stack).
    admin_key: str = ""

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: str | None = "default",
    ) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - 127.0.0.1 or API_URL
        request.add_header("Content-Type", "application/json")
        if auth == "default":
            request.add_header("Authorization", f"Bearer {self.api_key}")
        elif auth is not None:
            request.add_header("Authorization", auth)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                status, response_headers, text = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, response_headers, text = error.code, dict(error.headers), error.read()
        return Reply(status, response_headers, json.loads(text) if text else None)

    def outbox(self, to: str) -> list[str]:
        if not self.local:
            pytest.skip("reading SMS needs the local stack's outbox")
        messages = self.call("GET", "/_local/outbox", auth=None).body["messages"]
        return [m["body"] for m in messages if m["to"] == to]

    def code(self, to: str) -> str:
        return self.outbox(to)[-1].split()[0]

    def messages(self, to: str) -> list[dict[str, Any]]:
        """The outbox entries (``to``, ``body``, ``senderId``...) sent to ``to``, oldest first."""
        if not self.local:
            pytest.skip("reading SMS needs the local stack's outbox")
        return [m for m in self.call("GET", "/_local/outbox", auth=None).body["messages"] if m["to"] == to]

    def with_token(self, method: str, path: str, token: str | None, body: Any = None, **kwargs: Any) -> Reply:
        """A call authorised by a bearer token (a client or user access token) instead of the API key."""
        return self.call(method, path, body, auth=None if token is None else f"Bearer {token}", **kwargs)


@pytest.fixture(scope="session")
def api() -> Iterator[Api]:
    if os.environ.get("API_URL"):
        url, key = os.environ["API_URL"].rstrip("/"), os.environ["API_KEY"]
        yield Api(url, key, local=False, admin_key=os.environ.get("ADMIN_KEY", ""))
        return
    with spawn_local_stack(env=E2E_POLICY) as stack:
        yield Api(
            stack.url,
            stack.api_key,
            local=True,
            aws_endpoint=stack.aws_endpoint,
            process=stack,
            admin_key=stack.admin_key,
        )


@pytest.fixture(autouse=True)
def _no_access_denied(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test when the local stack denied a call a function's template policy does not allow.

    The handler answers such a call with a 503, which a test expecting an error could take for its own;
    the stack's console names every denial, so the test fails on that instead.
    """
    api = request.getfixturevalue("api") if "api" in request.fixturenames else None
    if api is None or api.process is None:
        yield
        return
    seen = len(api.process.log())
    yield
    denied = [line for line in api.process.log()[seen:].splitlines() if DENIAL_MARKER in line]
    if denied:
        pytest.fail("\n".join(denied), pytrace=False)


# Exchanges 600-999 (integration tests use 200-599), one thousand-number block per number.
_numbers = fresh_numbers(range(600, 1000))


@pytest.fixture
def phone() -> str:
    """A fresh number per test so the per-number limits of one test never touch another."""
    return next(_numbers)


@pytest.fixture
def new_phone() -> Callable[[], str]:
    """Fresh numbers for tests that need more than one."""
    return lambda: next(_numbers)


@pytest.fixture
def new_user() -> Callable[[], str]:
    """Fresh user IDs: a deployed stack keeps its users between runs."""
    return lambda: f"e2e-{uuid.uuid4()}"


# ------------------------------------------------------------------------------- tokens and forgeries


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a JWT, unchecked."""
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def signing_input(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    return ".".join(b64url(json.dumps(dict(part), separators=(",", ":")).encode()) for part in (header, claims))


def forge_alg_none(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """An unsigned token (``alg: none``) with the given claims."""
    return signing_input({**header, "alg": "none"}, claims) + "."


def forge_hs256(header: Mapping[str, Any], claims: Mapping[str, Any], secret: bytes) -> str:
    """A token MAC'd with HS256 under ``secret`` (a public key as text, the classic key-confusion attack).

    Signed by hand: pyjwt refuses to use a public key as an HMAC secret, which is the point of the attack.
    """
    message = signing_input({**header, "alg": "HS256"}, claims)
    return f"{message}.{b64url(hmac.new(secret, message.encode(), hashlib.sha256).digest())}"


def stack_signed(api: Api, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """A token signed with the stack's own KMS key (``kid`` names it), for claims the API would never issue."""
    if not (api.local and api.aws_endpoint):
        pytest.skip("signing with the stack's key needs the local stack's KMS")
    kms = boto3.client(
        "kms",
        endpoint_url=api.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    message = signing_input(header, claims)
    der = kms.sign(KeyId=header["kid"], Message=message.encode(), MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
    r, s = decode_dss_signature(der["Signature"])
    return f"{message}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@dataclass
class Idp:
    """The local stack's identity provider, seen from the tests: its key (shared through .local/), issuer
    and audience, so tests can mint good tokens and forge bad ones."""

    private_key: rsa.RSAPrivateKey
    issuer: str
    audience: str
    jwks: dict[str, Any]

    def token(self, sub: str, **overrides: Any) -> str:
        """A user access token the stack accepts; ``overrides`` go to ``local.idp.mint_token``."""
        arguments: dict[str, Any] = {"issuer": self.issuer, "audience": self.audience, **overrides}
        return mint_token(self.private_key, sub=sub, **arguments)


@pytest.fixture(scope="session")
def idp(api: Api) -> Idp:
    if not api.local:
        pytest.skip("the local identity provider exists only in the local stack")
    minted = api.call("POST", "/_local/idp/token", {"sub": "e2e-probe"}, auth=None)
    assert minted.status == 200, minted.body
    header, claims = unverified(minted.body["accessToken"])
    jwks = api.call("GET", "/_local/idp/jwks.json", auth=None).body
    key = load_or_create_key()
    local = Idp(key, claims["iss"], claims["aud"], jwks)
    assert header["kid"] == jwks["keys"][0]["kid"] == unverified(local.token("x"))[0]["kid"], (
        "the stack and the tests do not share .local/idp-key.pem"
    )
    return local
