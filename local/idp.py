"""A tiny identity provider for the local stack: one RSA key, its JWKS, and user access tokens (RS256).

Its tokens are RFC 9068 access tokens (header ``typ: at+jwt``), which is what the stack accepts with
IDP_ACCESS_TOKEN_CLAIM empty, its default; a token minted with ``headers={"typ": "JWT"}`` stands for an ID token.

Phone verification for signed-in users (``/v1/verification/sms/*``) accepts access tokens of the customer's own
identity provider. Locally that provider is this module: the key lives in ``.local/idp-key.pem`` (created on
first use, git-ignored), the gateway publishes its JWKS at ``GET /_local/idp/jwks.json`` and mints tokens at
``POST /_local/idp/token``, and the local stack points IDP_ISSUER, IDP_AUDIENCE and IDP_JWKS_URL at itself.

``python -m local.idp --sub user-123`` (``make token SUB=user-123``) prints a token for the running local
stack: ``python -m local`` records its IdP's issuer and audience in ``.local/stacks/<port>.json`` while it runs,
so the token names the stack ``make run`` started, whatever its PORT or IDP_AUDIENCE. ``PORT`` (or IDP_ISSUER)
in the environment picks a stack explicitly.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local import REPO_ROOT

DEFAULT_KEY_PATH: Final = REPO_ROOT / ".local" / "idp-key.pem"
STACKS_DIR: Final = REPO_ROOT / ".local" / "stacks"
DEFAULT_PORT: Final = 3000
DEFAULT_AUDIENCE: Final = "local-app"
DEFAULT_TTL_SECONDS: Final = 3600
MAX_TTL_SECONDS: Final = 24 * 3600
ALGORITHM: Final = "RS256"
ACCESS_TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 - the RFC 9068 header value, not a credential
ISSUER_PATH: Final = "/_local/idp"
JWKS_PATH: Final = f"{ISSUER_PATH}/jwks.json"
TOKEN_PATH: Final = f"{ISSUER_PATH}/token"
ENV_ISSUER: Final = "IDP_ISSUER"
ENV_AUDIENCE: Final = "IDP_AUDIENCE"
ENV_JWKS_URL: Final = "IDP_JWKS_URL"


# ------------------------------------------------------------------------------------------- keys


def load_or_create_key(path: Path | str = DEFAULT_KEY_PATH) -> rsa.RSAPrivateKey:
    """The RSA 2048 private key in ``path`` (PEM, PKCS#8), created there (mode 0600) if the file is missing.

    Creation is atomic: the key is written to a temporary file and linked into place, so two processes
    starting at once (the stack and ``make token``) end up with the same key.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        descriptor, temporary = tempfile.mkstemp(prefix=".idp-key-", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as handle:  # mkstemp creates it 0600
                handle.write(pem)
            with contextlib.suppress(FileExistsError):  # another process won the race: use its key
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise TypeError(f"{path} does not hold an RSA private key; delete it to get a new one")
    return loaded


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256) of ``public_key``: stable for a key, different for any other."""
    numbers = public_key.public_numbers()
    members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def public_jwk(private_key: rsa.RSAPrivateKey, kid: str | None = None) -> dict[str, str]:
    """The public half of ``private_key`` as a JWK (``kid`` defaults to its thumbprint)."""
    public_key = private_key.public_key()
    numbers = public_key.public_numbers()
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": ALGORITHM,
        "kid": kid or key_id(public_key),
        "n": _b64url_uint(numbers.n),
        "e": _b64url_uint(numbers.e),
    }


def jwks(private_key: rsa.RSAPrivateKey) -> dict[str, list[dict[str, str]]]:
    """The JSON Web Key Set that verifies tokens signed by ``private_key``."""
    return {"keys": [public_jwk(private_key)]}


# ----------------------------------------------------------------------------------------- tokens


def local_issuer(base_url: str) -> str:
    """The local IdP's ``iss`` for a stack served at ``base_url`` (``http://127.0.0.1:3000``)."""
    return base_url.rstrip("/") + ISSUER_PATH


def local_jwks_url(base_url: str) -> str:
    """Where the local stack at ``base_url`` publishes the IdP's JWKS."""
    return base_url.rstrip("/") + JWKS_PATH


def mint_token(
    private_key: rsa.RSAPrivateKey,
    *,
    sub: str,
    issuer: str,
    audience: str = DEFAULT_AUDIENCE,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    now: int | None = None,
    claims: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """A user access token: RS256, ``kid`` and ``typ: at+jwt`` headers; claims iss, aud, sub, iat, exp, ``claims``.

    ``claims`` and ``headers`` override the defaults, and a None value removes an entry, which is how tests
    forge expired, foreign or incomplete tokens.
    """
    issued = int(time.time()) if now is None else now
    payload: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "iat": issued,
        "exp": issued + ttl_seconds,
        **(claims or {}),
    }
    header = {"kid": key_id(private_key.public_key()), "typ": ACCESS_TOKEN_TYPE, **(headers or {})}
    return jwt.encode(
        {name: value for name, value in payload.items() if value is not None},
        private_key,
        algorithm=ALGORITHM,
        # pyjwt adds typ itself unless told "typ": None, so that one None is passed on.
        headers={name: value for name, value in header.items() if value is not None or name == "typ"},
    )


@dataclass(frozen=True)
class LocalIdp:
    """The IdP one local stack serves: its key, and the issuer and audience its functions expect."""

    private_key: rsa.RSAPrivateKey
    issuer: str
    audience: str = DEFAULT_AUDIENCE

    @classmethod
    def load(
        cls, *, issuer: str, audience: str = DEFAULT_AUDIENCE, key_path: Path | str = DEFAULT_KEY_PATH
    ) -> LocalIdp:
        """The IdP with the key in ``key_path`` (created on first use)."""
        return cls(load_or_create_key(key_path), issuer, audience)

    @property
    def kid(self) -> str:
        """The ``kid`` of the IdP's key."""
        return key_id(self.private_key.public_key())

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWKS the gateway serves at ``/_local/idp/jwks.json``."""
        return jwks(self.private_key)

    def mint(self, sub: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
        """A user access token for ``sub`` that the local stack accepts."""
        return mint_token(
            self.private_key, sub=sub, issuer=self.issuer, audience=self.audience, ttl_seconds=ttl_seconds
        )


def token_mismatch(idp: LocalIdp, authorization: str | None) -> str | None:
    """How a bearer token's ``iss``/``aud`` differ from this IdP's (``"iss '...' is not '...'"``), unverified.

    None when the header holds no readable JWT or its claims match: then the refusal has another cause
    (expiry, signature, type) that the function's own answer names.
    """
    token = (authorization or "").removeprefix("Bearer ").strip()
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    problems = []
    if claims.get("iss") != idp.issuer:
        problems.append(f"iss {claims.get('iss')!r} is not {idp.issuer!r}")
    audience = claims.get("aud")
    if idp.audience not in (audience if isinstance(audience, list) else [audience]):
        problems.append(f"aud {audience!r} is not {idp.audience!r}")
    return " and ".join(problems) or None


def token_request_subject(body: bytes) -> tuple[str, int]:
    """Parse a ``POST /_local/idp/token`` body ``{"sub": "...", "ttl"?: seconds}``.

    Raises
    ------
    ValueError
        Not a JSON object with a 1-128 character ``sub`` and, optionally, an integer ``ttl`` of 1 s to a day.
    """
    try:
        document = json.loads(body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("the body must be JSON") from exc
    if not isinstance(document, dict) or set(document) - {"sub", "ttl"}:
        raise ValueError('the body must be {"sub": "<user id>"} with an optional "ttl" in seconds')
    sub, ttl = document.get("sub"), document.get("ttl", DEFAULT_TTL_SECONDS)
    if not isinstance(sub, str) or not 1 <= len(sub) <= 128:
        raise ValueError("sub must be a string of 1 to 128 characters")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl must be an integer from 1 to {MAX_TTL_SECONDS}")
    return sub, ttl


def stack_environment(base_url: str, environ: Mapping[str, str]) -> dict[str, str]:
    """IDP_ISSUER, IDP_AUDIENCE and IDP_JWKS_URL for a stack at ``base_url``; a variable in ``environ`` wins.

    Setting ``IDP_ISSUER=`` (empty) in the environment leaves the verification endpoints out, as an empty
    IdpIssuer does in a deployed stack.
    """
    defaults = {
        ENV_ISSUER: local_issuer(base_url),
        ENV_AUDIENCE: DEFAULT_AUDIENCE,
        ENV_JWKS_URL: local_jwks_url(base_url),
    }
    return {name: environ.get(name, value) for name, value in defaults.items()}


# -------------------------------------------------------------------------------- running stacks


@dataclass(frozen=True)
class RunningStack:
    """What a running ``python -m local`` publishes for ``make token``: its URL and its IdP's claims."""

    url: str
    issuer: str
    audience: str
    pid: int

    @property
    def port(self) -> int:
        """The port of ``url``."""
        return int(self.url.rsplit(":", 1)[-1])


def publish_stack(stack: RunningStack, directory: Path = STACKS_DIR) -> Path:
    """Record ``stack`` in ``directory/<port>.json`` (replacing an earlier stack's file); return the path."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{stack.port}.json"
    document = {"url": stack.url, "issuer": stack.issuer, "audience": stack.audience, "pid": stack.pid}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document), encoding="utf-8")
    temporary.replace(path)
    return path


def running_stacks(directory: Path = STACKS_DIR) -> list[RunningStack]:
    """The published stacks whose process still runs, by port (files of stopped or killed stacks are ignored)."""
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            stack = RunningStack(
                str(document["url"]), str(document["issuer"]), str(document["audience"]), int(document["pid"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(stack.pid):
            found.append(stack)
    return sorted(found, key=lambda stack: stack.port)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process holds the pid: still running
    return True


def token_claims(environ: Mapping[str, str], stacks: Sequence[RunningStack]) -> tuple[str, str]:
    """The issuer and audience ``make token`` mints for.

    IDP_ISSUER, else ``PORT`` (a stack on 127.0.0.1:$PORT), else the one running stack, else port 3000;
    IDP_AUDIENCE, else that stack's audience, else ``local-app``.

    Raises
    ------
    ValueError
        Several stacks run and neither PORT nor IDP_ISSUER says which one.
    """
    port = environ.get("PORT")
    if environ.get(ENV_ISSUER):
        chosen = next((stack for stack in stacks if stack.issuer == environ[ENV_ISSUER]), None)
        issuer = environ[ENV_ISSUER]
    elif port:
        chosen = next((stack for stack in stacks if str(stack.port) == port), None)
        issuer = chosen.issuer if chosen else local_issuer(f"http://127.0.0.1:{port}")
    elif len(stacks) > 1:
        ports = ", ".join(str(stack.port) for stack in stacks)
        raise ValueError(f"local stacks run on ports {ports}: say which one with PORT=<port>")
    else:
        chosen = stacks[0] if stacks else None
        issuer = chosen.issuer if chosen else local_issuer(f"http://127.0.0.1:{DEFAULT_PORT}")
    audience = environ.get(ENV_AUDIENCE) or (chosen.audience if chosen else DEFAULT_AUDIENCE)
    return issuer, audience


# -------------------------------------------------------------------------------------------- CLI


def main(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None, stacks_dir: Path = STACKS_DIR
) -> int:
    """``python -m local.idp --sub user-123 [--ttl 3600]``: print a user access token."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m local.idp",
        description="Mint a user access token of the local identity provider (for /v1/verification/sms/*).",
    )
    parser.add_argument("--sub", required=True, help="the user ID (the token's sub claim)")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="lifetime in seconds (default 3600)")
    parser.add_argument(
        "--issuer", help="iss claim (default IDP_ISSUER, else the stack on $PORT, else the running stack's)"
    )
    parser.add_argument("--audience", help="aud claim (default IDP_AUDIENCE, else the running stack's, local-app)")
    parser.add_argument("--key", type=Path, default=DEFAULT_KEY_PATH, help="private key file (created if missing)")
    arguments = parser.parse_args(argv)
    if not 1 <= len(arguments.sub) <= 128:
        parser.error("--sub must be 1 to 128 characters")
    if not 1 <= arguments.ttl <= MAX_TTL_SECONDS:
        parser.error(f"--ttl must be from 1 to {MAX_TTL_SECONDS}")
    try:
        issuer, audience = token_claims(environ, running_stacks(stacks_dir))
    except ValueError as ambiguous:
        parser.error(str(ambiguous))
    idp = LocalIdp.load(
        issuer=arguments.issuer or issuer, audience=arguments.audience or audience, key_path=arguments.key
    )
    print(idp.mint(arguments.sub, arguments.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
