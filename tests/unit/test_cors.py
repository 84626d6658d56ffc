"""CORS of the client routes: preflights allowed for the live apps' allowedOrigins, answers readable only from the
token's app's origins (every live app's when the answer names no app), no credentials, and nothing for any
other route."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions.client_preflight import app as preflight
from local.gateway import LambdaContext
from otp_core import cors, runtime
from otp_core.app_admin import AppDirectory
from otp_core.errors import ForbiddenError, UnauthorizedError
from otp_core.http import Event, Response, make_resolver
from otp_core.settings import Policy, Settings

ROOT = Path(__file__).resolve().parents[2]
SHOP, BLOG = "https://shop.example", "https://blog.example"


class FakeDirectory:
    """The apps directory as the preflight reads it: every live app with its policy."""

    def __init__(self, **origins: tuple[str, ...]) -> None:
        self._apps = [(app_id, Settings(allowed_origins=",".join(o)).policy) for app_id, o in origins.items()]

    def apps(self) -> list[tuple[str, Policy]]:
        return self._apps

    allowed_origins = AppDirectory.allowed_origins  # the union over apps(), as the stack computes it


@pytest.fixture
def directory(monkeypatch: pytest.MonkeyPatch) -> FakeDirectory:
    found = FakeDirectory(default=(), shop=(SHOP, "http://localhost:8080"), blog=(BLOG,))
    monkeypatch.setattr(runtime, "apps", lambda: found)
    return found


def _context() -> LambdaContext:
    return LambdaContext(
        function_name="client-preflight",
        memory_limit_in_mb=128,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:client-preflight",
        aws_request_id="r-1",
    )


def _event(name: str = "client_preflight", path: str | None = None, **headers: str | None) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / f"{name}.json").read_text(encoding="utf-8"))
    for header, value in headers.items():
        header = header.replace("_", "-")
        if value is None:
            event["headers"].pop(header, None)
            event["multiValueHeaders"].pop(header, None)
        else:
            event["headers"][header] = value
            event["multiValueHeaders"][header] = [value]
    if path is not None:
        event["path"] = event["resource"] = path
    return event


def _headers(answer: dict[str, Any]) -> dict[str, str]:
    return {name: values[-1] for name, values in answer["multiValueHeaders"].items()}


# ------------------------------------------------------------------------------------------ the rules


def test_origins_match_exactly_and_null_never() -> None:
    origins = frozenset({SHOP, "http://localhost:8080"})
    assert cors.allows(SHOP, origins)
    assert cors.allows("http://localhost:8080", origins)
    # Spellings of the same host, other schemes, ports and suffixes are other origins
    for other in (f"{SHOP}/", "https://SHOP.example", "http://shop.example", f"{SHOP}:8443", f"{SHOP}.evil", "null"):
        assert not cors.allows(other, origins), other
    assert not cors.allows(None, origins)
    assert not cors.allows("", origins)
    assert not cors.allows("null", frozenset({"null"}))


def test_an_answer_lets_only_an_allowed_origin_read_it_and_always_varies_by_origin() -> None:
    assert cors.response_headers(SHOP, {SHOP}) == {
        "Access-Control-Allow-Origin": SHOP,
        "Access-Control-Expose-Headers": "Retry-After",
        "Vary": "Origin",
    }
    assert cors.response_headers(BLOG, {SHOP}) == {"Vary": "Origin"}
    # Never credentials, never a wildcard
    assert "Access-Control-Allow-Credentials" not in cors.response_headers(SHOP, {SHOP})


def test_a_preflight_allows_post_with_the_token_header_only_from_an_allowed_origin() -> None:
    assert cors.preflight_headers(SHOP, "POST", {SHOP}) == {
        "Access-Control-Allow-Origin": SHOP,
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }
    with pytest.raises(ForbiddenError, match="allowedOrigins"):
        cors.preflight_headers(BLOG, "POST", {SHOP})
    for method in ("GET", "DELETE", "post", None):
        with pytest.raises(ForbiddenError, match="only POST"):
            cors.preflight_headers(SHOP, method, {SHOP})


def test_an_origin_setting_with_its_default_port_is_refused() -> None:
    # Browsers send https://shop.example, never https://shop.example:443, so such a setting could never match
    for spelled in ("https://shop.example:443", "http://localhost:80"):
        with pytest.raises(ValueError, match="default port"):
            Settings(allowed_origins=spelled)
    for spelled in ("https://shop.example:0", "https://shop.example:70000"):
        with pytest.raises(ValueError, match="1-65535"):
            Settings(allowed_origins=spelled)
    assert Settings(allowed_origins="https://shop.example:8443").allowed_origins == ("https://shop.example:8443",)


# ------------------------------------------------------------------------------------------ the router


def _router(origins: Any) -> Any:
    router = make_resolver(cors=origins)

    @router.post("/v1/client/sms/verify")
    def verify() -> Response:
        if router.current_event.headers.get("Authorization") == "Bearer bad":
            raise UnauthorizedError("the token is invalid or expired")
        return Response(200, body="{}", content_type="application/json")

    return router


def test_every_answer_of_a_cors_router_carries_the_headers_for_its_origin(directory: FakeDirectory) -> None:
    router = _router(lambda event: frozenset({SHOP}))
    # An allowed origin reads the answer, a problem answer included
    for authorization in ("Bearer good", "Bearer bad"):
        answer = router.resolve(_event("client_verify", Origin=SHOP, Authorization=authorization), _context())
        assert _headers(answer)["Access-Control-Allow-Origin"] == SHOP
        assert _headers(answer)["Access-Control-Expose-Headers"] == "Retry-After"
    # Another origin, and a call without an Origin (a server's or a native app's), get no allow header
    for origin in (BLOG, None):
        answer = router.resolve(_event("client_verify", Origin=origin), _context())
        assert answer["statusCode"] == 200
        assert _headers(answer)["Vary"] == "Origin"
        assert "Access-Control-Allow-Origin" not in _headers(answer)


def test_a_failure_to_find_the_origins_withholds_the_headers_and_keeps_the_answer() -> None:
    def broken(event: Event) -> frozenset[str]:
        raise RuntimeError("the table is down")

    answer = _router(broken).resolve(_event("client_verify", Origin=SHOP), _context())
    assert answer["statusCode"] == 200
    assert "Access-Control-Allow-Origin" not in _headers(answer)


def test_a_router_without_cors_sends_no_cors_header() -> None:
    router = make_resolver()
    router.post("/v1/track")(lambda: Response(200, body="{}", content_type="application/json"))
    answer = router.resolve(_event("client_verify", path="/v1/track", Origin=SHOP), _context())
    assert not any(name.startswith("Access-Control") or name == "Vary" for name in _headers(answer))


def test_the_client_functions_use_the_client_origins() -> None:
    from functions.client_challenge import app as challenge
    from functions.client_enroll import app as enroll
    from functions.client_verify import app as verify

    assert enroll.app._cors is challenge.app._cors is verify.app._cors is runtime.client_origins


def test_client_origins_are_the_token_s_app_s_else_every_app_s(
    directory: FakeDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = Settings(allowed_origins=SHOP).policy

    def client_app(authorization: str | None) -> tuple[str, Policy]:
        if authorization != "Bearer shop-token":
            raise UnauthorizedError("the token is invalid or expired")
        return "shop", shop

    monkeypatch.setattr(runtime, "client_app", client_app)
    assert runtime.client_origins(Event(_event("client_verify", Authorization="Bearer shop-token"))) == {SHOP}
    # No valid token: the answer names no app, so every live app's origins may read it
    every = {SHOP, "http://localhost:8080", BLOG}
    assert runtime.client_origins(Event(_event("client_verify", Authorization="Bearer forged"))) == every
    assert runtime.client_origins(Event(_event("client_verify", Authorization=None))) == every


# ------------------------------------------------------------------------------------------ the preflight function


@pytest.mark.parametrize("path", preflight.ROUTES)
def test_a_preflight_from_an_app_s_origin_is_allowed(directory: FakeDirectory, path: str) -> None:
    answer = preflight.lambda_handler(_event(path=path, Origin=BLOG), _context())
    headers = _headers(answer)
    assert answer["statusCode"] == 204
    assert answer["body"] == ""
    assert headers["Access-Control-Allow-Origin"] == BLOG
    assert headers["Access-Control-Allow-Methods"] == "POST"
    assert headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert "Access-Control-Allow-Credentials" not in headers


@pytest.mark.parametrize(
    ("origin", "method"),
    [("https://evil.example", "POST"), ("null", "POST"), (f"{SHOP}.evil", "POST"), (SHOP, "PUT"), (SHOP, None)],
)
def test_a_preflight_from_another_origin_or_for_another_method_is_a_403_problem(
    directory: FakeDirectory, origin: str, method: str | None
) -> None:
    answer = preflight.lambda_handler(_event(Origin=origin, Access_Control_Request_Method=method), _context())
    headers = _headers(answer)
    assert answer["statusCode"] == 403
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(answer["body"])["code"] == "FORBIDDEN"
    assert not any(name.startswith("Access-Control") for name in headers)


def test_an_options_request_that_is_no_preflight_lists_the_methods(directory: FakeDirectory) -> None:
    answer = preflight.lambda_handler(_event(Origin=None), _context())
    assert answer["statusCode"] == 204
    assert _headers(answer)["Allow"] == "OPTIONS, POST"
    assert not any(name.startswith("Access-Control") for name in _headers(answer))


def test_with_no_app_allowing_any_origin_every_preflight_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "apps", lambda: FakeDirectory(default=()))
    answer = preflight.lambda_handler(_event(Origin=SHOP), _context())
    assert answer["statusCode"] == 403


def test_the_preflight_function_answers_only_options_of_the_client_routes(directory: FakeDirectory) -> None:
    event = _event(Origin=SHOP)
    event["httpMethod"] = "POST"
    assert preflight.lambda_handler(event, _context())["statusCode"] == 404
    assert preflight.lambda_handler(_event(path="/v1/track", Origin=SHOP), _context())["statusCode"] == 404
