"""The local identity provider's pure parts (local/idp.py) and how the local stack wires it in: the key
file, the JWKS, minted tokens, the CLI, the gateway's /_local/idp routes, and the HasIdp condition."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import stat
import subprocess
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from local.gateway import HINT_HEADER, FunctionRunner, Gateway, GatewayServer, HttpRequest, start
from local.idp import (
    DEFAULT_AUDIENCE,
    LocalIdp,
    RunningStack,
    jwks,
    key_id,
    load_or_create_key,
    local_issuer,
    local_jwks_url,
    main,
    mint_token,
    public_jwk,
    publish_stack,
    running_stacks,
    stack_environment,
    token_claims,
    token_mismatch,
    token_request_subject,
)
from local.services import resolve_environment
from local.template import Resolver, Template, load_document

ISSUER = "http://127.0.0.1:3000/_local/idp"
NOW = 1_700_000_000


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _verify(token: str, private_key: rsa.RSAPrivateKey, *, audience: str = DEFAULT_AUDIENCE) -> dict[str, object]:
    jwk = jwt.PyJWK(jwks(private_key)["keys"][0])
    claims: dict[str, object] = jwt.decode(
        token, jwk, algorithms=["RS256"], audience=audience, issuer=ISSUER, options={"verify_exp": False}
    )
    return claims


# ------------------------------------------------------------------------------------------ the key


def test_the_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    # Given no key file yet
    path = tmp_path / ".local" / "idp-key.pem"

    # When the key is loaded twice
    first = load_or_create_key(path)
    second = load_or_create_key(path)

    # Then one RSA 2048 key was written, readable by its owner only, and both loads return it
    assert first.key_size == 2048
    assert key_id(first.public_key()) == key_id(second.public_key())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in path.parent.iterdir()] == ["idp-key.pem"]  # no temporary file left behind


def test_concurrent_first_uses_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "idp-key.pem"

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        keys = list(pool.map(lambda _: load_or_create_key(path), range(6)))

    assert len({key_id(k.public_key()) for k in keys}) == 1
    assert key_id(load_or_create_key(path).public_key()) == key_id(keys[0].public_key())


def test_a_key_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "idp-key.pem"
    other = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )

    with pytest.raises(TypeError, match="RSA"):
        load_or_create_key(path)


def test_key_id_is_the_rfc_7638_thumbprint() -> None:
    # The example key of RFC 7638, section 3.1, and its published thumbprint
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3ok"
        "njhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu"
        "6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awa"
        "pJzKnqDKgw"
    )
    modulus = int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big")
    public_key = rsa.RSAPublicNumbers(65537, modulus).public_key()

    assert key_id(public_key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


# ----------------------------------------------------------------------------------------- the JWKS


def test_jwks_publishes_only_the_public_half(key: rsa.RSAPrivateKey) -> None:
    document = jwks(key)

    (jwk,) = document["keys"]
    assert set(jwk) == {"kty", "use", "alg", "kid", "n", "e"}
    assert (jwk["kty"], jwk["use"], jwk["alg"], jwk["e"]) == ("RSA", "sig", "RS256", "AQAB")
    assert jwk["kid"] == key_id(key.public_key())
    assert jwt.PyJWK(jwk).key.public_numbers() == key.public_key().public_numbers()
    assert json.loads(json.dumps(document)) == document


def test_public_jwk_takes_an_explicit_kid(key: rsa.RSAPrivateKey) -> None:
    assert public_jwk(key, kid="k1")["kid"] == "k1"


# ---------------------------------------------------------------------------------------- the tokens


def test_minted_token_carries_the_claims_and_kid(key: rsa.RSAPrivateKey) -> None:
    # When a token is minted for a user at a fixed time
    token = mint_token(key, sub="user-123", issuer=ISSUER, ttl_seconds=600, now=NOW)

    # Then it is an RFC 9068 access token (typ at+jwt), RS256 with the key's kid, and holds iss, aud, sub, iat
    # and exp
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["typ"], header["kid"]) == ("RS256", "at+jwt", key_id(key.public_key()))
    assert _verify(token, key) == {"iss": ISSUER, "aud": "local-app", "sub": "user-123", "iat": NOW, "exp": NOW + 600}


def test_minted_token_overrides_and_removals(key: rsa.RSAPrivateKey) -> None:
    token = mint_token(
        key,
        sub="u",
        issuer=ISSUER,
        audience="app",
        now=NOW,
        claims={"exp": None, "scope": "read"},
        headers={"kid": "other", "typ": None},
    )

    header = jwt.get_unverified_header(token)
    claims = _verify(token, key, audience="app")
    assert header == {"alg": "RS256", "kid": "other"}
    assert claims == {"iss": ISSUER, "aud": "app", "sub": "u", "iat": NOW, "scope": "read"}


def test_a_token_from_another_key_does_not_verify(key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = mint_token(other, sub="u", issuer=ISSUER, headers={"kid": key_id(key.public_key())})

    with pytest.raises(jwt.InvalidSignatureError):
        _verify(forged, key)


class _OneKey:
    """Stands in for PyJWKClient over the local IdP's JWKS."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self.jwk = jwt.PyJWK(jwks(private_key)["keys"][0])

    def get_signing_key(self, kid: str) -> jwt.PyJWK:
        if kid != self.jwk.key_id:
            raise jwt.PyJWKClientError("unknown kid")
        return self.jwk


def test_the_stacks_verifier_accepts_local_access_tokens_and_refuses_id_tokens(key: rsa.RSAPrivateKey) -> None:
    from otp_core.errors import UnauthorizedError
    from otp_core.idp import IdpTokenVerifier

    # Given the verifier the local stack builds (IDP_ACCESS_TOKEN_CLAIM empty: typ must be at+jwt)
    idp = LocalIdp(key, ISSUER)
    verifier = IdpTokenVerifier(ISSUER, DEFAULT_AUDIENCE, local_jwks_url(ISSUER), jwk_client=_OneKey(key))

    # When the local IdP mints an access token, then the stack accepts it
    assert verifier.subject(f"Bearer {idp.mint('user-1')}") == "user-1"

    # And a token of the same key, issuer and audience typed as an ID token is refused
    id_token = mint_token(key, sub="user-1", issuer=ISSUER, headers={"typ": "JWT"})
    with pytest.raises(UnauthorizedError):
        verifier.subject(f"Bearer {id_token}")


def test_local_idp_mints_for_its_issuer_and_audience(key: rsa.RSAPrivateKey) -> None:
    idp = LocalIdp(key, ISSUER, "my-app")

    claims = _verify(idp.mint("user-9", 60), key, audience="my-app")

    assert (claims["sub"], claims["iss"], claims["aud"]) == ("user-9", ISSUER, "my-app")
    assert claims["exp"] == claims["iat"] + 60  # type: ignore[operator]
    assert idp.kid == key_id(key.public_key())
    assert idp.jwks() == jwks(key)


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b'{"sub": "user-123"}', ("user-123", 3600)), (b'{"sub": "u", "ttl": 60}', ("u", 60))],
)
def test_token_request_bodies(body: bytes, expected: tuple[str, int]) -> None:
    assert token_request_subject(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"sub": ""}',
        b'{"sub": 5}',
        b'{"sub": "' + b"x" * 129 + b'"}',
        b'{"sub": "u", "aud": "other"}',
        b'{"sub": "u", "ttl": 0}',
        b'{"sub": "u", "ttl": true}',
        b'{"sub": "u", "ttl": 86401}',
        b"\xff",
    ],
)
def test_bad_token_request_bodies(body: bytes) -> None:
    with pytest.raises(ValueError):
        token_request_subject(body)


# -------------------------------------------------------------------------------- the stack settings


def test_stack_environment_points_at_the_stack_unless_set() -> None:
    base = "http://127.0.0.1:4000"

    assert stack_environment(base, {}) == {
        "IDP_ISSUER": "http://127.0.0.1:4000/_local/idp",
        "IDP_AUDIENCE": "local-app",
        "IDP_JWKS_URL": "http://127.0.0.1:4000/_local/idp/jwks.json",
    }
    assert stack_environment(base + "/", {"IDP_AUDIENCE": "mine"})["IDP_AUDIENCE"] == "mine"
    assert stack_environment(base, {"IDP_ISSUER": ""})["IDP_ISSUER"] == ""  # an explicit "off"
    assert local_issuer(base + "/") == local_issuer(base) == f"{base}/_local/idp"
    assert local_jwks_url(base) == f"{base}/_local/idp/jwks.json"


# ------------------------------------------------------------------------------------------- the CLI


def test_cli_prints_a_token_for_the_stack_on_port(
    tmp_path: Path, key: rsa.RSAPrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "idp-key.pem"

    assert main(["--sub", "user-123", "--key", str(path)], environ={"PORT": "4567"}, stacks_dir=tmp_path) == 0

    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["iss"], claims["aud"], claims["sub"]) == (
        "http://127.0.0.1:4567/_local/idp",
        "local-app",
        "user-123",
    )
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(token)["kid"] == key_id(load_or_create_key(path).public_key())


def test_cli_honours_the_environment_and_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    environ = {"IDP_ISSUER": "https://idp.example", "IDP_AUDIENCE": "api://app", "PORT": "1"}

    main(["--sub", "u", "--ttl", "60", "--key", str(tmp_path / "k.pem")], environ=environ, stacks_dir=tmp_path)

    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert (claims["iss"], claims["aud"], claims["exp"] - claims["iat"]) == ("https://idp.example", "api://app", 60)


@pytest.mark.parametrize("argv", [[], ["--sub", ""], ["--sub", "u", "--ttl", "0"], ["--sub", "u", "--ttl", "x"]])
def test_cli_rejects_bad_arguments(tmp_path: Path, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--key", str(tmp_path / "k.pem")], environ={}, stacks_dir=tmp_path)
    assert exited.value.code == 2
    assert not (tmp_path / "k.pem").exists()


def test_cli_follows_the_running_stack_without_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given `PORT=8080 IDP_AUDIENCE=my-app make run` published its IdP, and a shell without PORT
    stack = RunningStack("http://127.0.0.1:8080", local_issuer("http://127.0.0.1:8080"), "my-app", os.getpid())
    publish_stack(stack, tmp_path / "stacks")

    # When `make -s token` mints
    main(["--sub", "u", "--key", str(tmp_path / "k.pem")], environ={}, stacks_dir=tmp_path / "stacks")

    # Then the token names that stack's issuer and audience, not port 3000's
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == ("http://127.0.0.1:8080/_local/idp", "my-app")


def test_published_stacks_of_stopped_processes_are_ignored(tmp_path: Path) -> None:
    alive = RunningStack("http://127.0.0.1:3000", "iss-a", "aud-a", os.getpid())
    gone = RunningStack("http://127.0.0.1:4000", "iss-b", "aud-b", _finished_pid())
    for stack in (alive, gone):
        publish_stack(stack, tmp_path)
    (tmp_path / "5000.json").write_text("{not json")

    assert running_stacks(tmp_path) == [alive]
    assert running_stacks(tmp_path / "missing") == []


def _finished_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


STACK_3000 = RunningStack("http://127.0.0.1:3000", local_issuer("http://127.0.0.1:3000"), "local-app", 1)
STACK_8080 = RunningStack("http://127.0.0.1:8080", local_issuer("http://127.0.0.1:8080"), "app-8080", 2)


@pytest.mark.parametrize(
    ("environ", "stacks", "expected"),
    [
        ({}, [], ("http://127.0.0.1:3000/_local/idp", "local-app")),  # nothing runs yet: the default port
        ({}, [STACK_8080], ("http://127.0.0.1:8080/_local/idp", "app-8080")),
        ({"PORT": "3000"}, [STACK_3000, STACK_8080], ("http://127.0.0.1:3000/_local/idp", "local-app")),
        ({"PORT": "8080"}, [STACK_3000, STACK_8080], ("http://127.0.0.1:8080/_local/idp", "app-8080")),
        ({"PORT": "9999"}, [STACK_8080], ("http://127.0.0.1:9999/_local/idp", "local-app")),
        ({"IDP_ISSUER": "https://idp.example"}, [STACK_8080], ("https://idp.example", "local-app")),
        ({"IDP_AUDIENCE": "api://x"}, [STACK_8080], ("http://127.0.0.1:8080/_local/idp", "api://x")),
    ],
)
def test_token_claims_pick_the_stack(
    environ: dict[str, str], stacks: list[RunningStack], expected: tuple[str, str]
) -> None:
    assert token_claims(environ, stacks) == expected


def test_token_claims_refuse_to_guess_between_stacks() -> None:
    with pytest.raises(ValueError, match="3000, 8080"):
        token_claims({}, [STACK_3000, STACK_8080])


def test_token_mismatch_names_the_wrong_claims(key: rsa.RSAPrivateKey) -> None:
    idp = LocalIdp(key, ISSUER)
    other_port = mint_token(key, sub="u", issuer="http://127.0.0.1:8080/_local/idp")
    other_audience = mint_token(key, sub="u", issuer=ISSUER, audience="other-app")

    assert token_mismatch(idp, f"Bearer {idp.mint('u')}") is None
    assert token_mismatch(idp, "Bearer not-a-jwt") is None
    assert token_mismatch(idp, None) is None
    assert token_mismatch(idp, f"Bearer {other_port}") == (
        "iss 'http://127.0.0.1:8080/_local/idp' is not 'http://127.0.0.1:3000/_local/idp'"
    )
    assert token_mismatch(idp, f"Bearer {other_audience}") == "aud 'other-app' is not 'local-app'"


# --------------------------------------------------------------------------------------- the gateway

TEMPLATE = """
Parameters:
  IdpIssuer: {Type: String, Default: ""}
  IdpAudience: {Type: String, Default: ""}
  TrackRules: {Type: String, Default: ""}
Conditions:
  HasIdp: !Not [!Equals [!Ref IdpIssuer, ""]]
Resources:
  TrackFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/track/
      Handler: app.lambda_handler
      Environment: {Variables: {TRACK_RULES: !Ref TrackRules}}
      Events:
        Api: {Type: Api, Properties: {Path: /v1/track, Method: post, Auth: {Authorizer: NONE}}}
  SendFunction:
    Type: AWS::Serverless::Function
    Condition: HasIdp
    Properties:
      CodeUri: functions/send/
      Handler: app.lambda_handler
      Environment: {Variables: {IDP_ISSUER: !Ref IdpIssuer, IDP_AUDIENCE: !Ref IdpAudience}}
      Events:
        Api: {Type: Api, Properties: {Path: /v1/verification/sms/send, Method: post, Auth: {Authorizer: NONE}}}
"""


@pytest.fixture
def template() -> Template:
    return Template(load_document(TEMPLATE))


def test_parameters_map_to_the_variables_that_ref_them(template: Template) -> None:
    assert template.parameter_variables == {
        "IdpIssuer": ("IDP_ISSUER",),
        "IdpAudience": ("IDP_AUDIENCE",),
        "TrackRules": ("TRACK_RULES",),
    }


def test_a_conditional_function_exists_when_its_variable_sets_the_parameter(template: Template) -> None:
    # Given the issuer set under the functions' variable name, as the local stack sets it
    environ = {"IDP_ISSUER": ISSUER, "IDP_AUDIENCE": "local-app"}
    resolver = Resolver(template, environ=environ)

    # Then the condition holds, the function is in, and its variables are resolved
    assert resolver.condition("HasIdp") is True
    assert resolver.is_active("SendFunction")
    environment = resolve_environment(template, resolver, environ)
    assert (environment["IDP_ISSUER"], environment["IDP_AUDIENCE"]) == (ISSUER, "local-app")


@pytest.mark.parametrize("environ", [{}, {"IDP_ISSUER": ""}, {"IdpIssuer": "", "IDP_ISSUER": ISSUER}])
def test_a_conditional_function_is_left_out_when_the_parameter_is_empty(
    template: Template, environ: dict[str, str]
) -> None:
    resolver = Resolver(template, environ=environ)

    assert resolver.condition("HasIdp") is False
    assert not resolver.is_active("SendFunction")
    assert "IDP_ISSUER" not in resolve_environment(template, resolver, environ)
    gateway = Gateway(template, active=resolver.is_active)
    assert gateway.router.match("POST", "/v1/verification/sms/send") is None
    assert gateway.router.match("POST", "/v1/track") is not None
    assert [route.path for route in gateway.routes] == ["/v1/track"]


def test_the_gateway_serves_the_idp(template: Template, key: rsa.RSAPrivateKey) -> None:
    gateway = Gateway(template, idp=LocalIdp(key, ISSUER))

    published = gateway.handle(HttpRequest("GET", "/_local/idp/jwks.json", []))
    minted = gateway.handle(HttpRequest("POST", "/_local/idp/token", [], b'{"sub": "user-1"}'))
    refused = gateway.handle(HttpRequest("POST", "/_local/idp/token", [], b'{"sub": ""}'))
    wrong_method = gateway.handle(HttpRequest("DELETE", "/_local/idp/jwks.json", []))

    assert (published.status, published.json()) == (200, jwks(key))
    assert minted.status == 200
    assert minted.header("Cache-Control") == "no-store"
    assert _verify(minted.json()["accessToken"], key)["sub"] == "user-1"
    assert refused.status == 400
    assert refused.header("Content-Type") == "application/problem+json"
    assert refused.json()["code"] == "INVALID_REQUEST"
    assert wrong_method.status == 403  # API Gateway's MISSING_AUTHENTICATION_TOKEN default


def test_a_refused_token_of_another_stack_gets_a_hint(
    template: Template, key: rsa.RSAPrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a verification function that refuses the token, as it refuses any token of another issuer
    def refuse(_event: dict[str, object], _context: object) -> dict[str, object]:
        return {"statusCode": 401, "body": json.dumps({"status": 401, "code": "UNAUTHORIZED"})}

    environ = {"IDP_ISSUER": ISSUER}
    gateway = Gateway(
        template,
        idp=LocalIdp(key, ISSUER),
        runner=FunctionRunner(loader=lambda _function: refuse),
        active=Resolver(template, environ=environ).is_active,
    )
    foreign = mint_token(key, sub="u", issuer="http://127.0.0.1:8080/_local/idp")
    own = LocalIdp(key, ISSUER).mint("u")

    # When a token minted for port 8080 and one of this stack are sent
    hinted = gateway.handle(HttpRequest("POST", "/v1/verification/sms/send", [("Authorization", f"Bearer {foreign}")]))
    console = capsys.readouterr().err
    plain = gateway.handle(HttpRequest("POST", "/v1/verification/sms/send", [("Authorization", f"Bearer {own}")]))

    # Then both answer the function's 401; only the foreign one carries a hint, also on the console
    assert (hinted.status, plain.status) == (401, 401)
    assert ISSUER in (hinted.header(HINT_HEADER) or "")
    assert "iss 'http://127.0.0.1:8080/_local/idp' is not" in console
    assert plain.header(HINT_HEADER) is None
    assert capsys.readouterr().err == ""


def test_without_an_idp_the_routes_do_not_exist(template: Template) -> None:
    response = Gateway(template).handle(HttpRequest("GET", "/_local/idp/jwks.json", []))

    assert response.status == 403
    assert response.header("x-amzn-ErrorType") == "MISSING_AUTHENTICATION_TOKEN"


def test_a_server_without_a_gateway_is_not_started() -> None:
    server = GatewayServer.__new__(GatewayServer)  # not bound: unit tests have no sockets
    server.gateway = None

    with pytest.raises(RuntimeError, match="gateway"):
        start(server)
