"""CORS of the client routes against a running stack: preflights from an app's allowedOrigins pass, others are
refused; an answer is readable from its token's app's origins only (every live app's when the token is not
valid); server and admin routes send no CORS header. No SMS is sent (the challenge goes to an unenrolled user)."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import Api, Reply
from tests.e2e.test_apps import new_app  # noqa: F401 - the fixture: apps made for a test, deleted after it

pytestmark = pytest.mark.e2e

CLIENT_ROUTES = ("/v1/client/sms/enroll", "/v1/client/sms/challenge", "/v1/client/sms/verify")


def header(reply: Reply, name: str) -> str | None:
    return next((value for key, value in reply.headers.items() if key.lower() == name.lower()), None)


def cors_headers(reply: Reply) -> set[str]:
    return {key.lower() for key in reply.headers if key.lower().startswith("access-control-")}


def preflight(api: Api, path: str, origin: str, method: str = "POST") -> Reply:
    return api.call(
        "OPTIONS",
        path,
        auth=None,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def client_token(api: Api, key: str) -> str:
    tracked = api.call("POST", "/v1/track", {"userId": f"e2e-{uuid.uuid4()}", "action": "signIn"}, auth=f"Bearer {key}")
    assert tracked.status == 200, tracked.body
    token: str = tracked.body["token"]
    return token


def test_a_preflight_from_an_app_s_origin_passes_on_every_client_route(api: Api, new_app) -> None:  # noqa: F811
    # Given an app that allows one origin
    origin = f"https://{uuid.uuid4().hex[:12]}.example"
    new_app({"allowedOrigins": [origin]})

    for path in CLIENT_ROUTES:
        # When a browser at that origin asks to POST with a token
        reply = preflight(api, path, origin)

        # Then it may, without credentials
        assert reply.status == 204, (path, reply.body)
        assert header(reply, "Access-Control-Allow-Origin") == origin
        assert header(reply, "Access-Control-Allow-Methods") == "POST"
        assert {h.strip().lower() for h in (header(reply, "Access-Control-Allow-Headers") or "").split(",")} == {
            "authorization",
            "content-type",
        }
        assert header(reply, "Access-Control-Allow-Credentials") is None


def test_a_preflight_from_an_origin_no_app_allows_is_refused(api: Api) -> None:
    for origin, method in (("https://never-allowed.example", "POST"), ("null", "POST")):
        reply = preflight(api, "/v1/client/sms/verify", origin, method)
        assert reply.status == 403, reply.body
        assert reply.body["code"] == "FORBIDDEN"
        assert not cors_headers(reply)


def test_an_answer_is_readable_only_from_the_token_s_app_s_origins(api: Api, new_app) -> None:  # noqa: F811
    # Given two apps, each allowing its own origin, and a client token of the first
    shop, blog = (f"https://{label}-{uuid.uuid4().hex[:8]}.example" for label in ("shop", "blog"))
    _, shop_key = new_app({"allowedOrigins": [shop]}, label="shop")
    new_app({"allowedOrigins": [blog]}, label="blog")
    token = client_token(api, shop_key)

    # When a browser at the first app's origin calls a client route (the user is not enrolled: 409, no SMS)
    mine = api.with_token("POST", "/v1/client/sms/challenge", token, headers={"Origin": shop})

    # Then it may read the answer, Retry-After included, without credentials
    assert mine.status == 409, mine.body
    assert header(mine, "Access-Control-Allow-Origin") == shop
    assert header(mine, "Access-Control-Expose-Headers") == "Retry-After"
    assert header(mine, "Access-Control-Allow-Credentials") is None
    assert "Origin" in (header(mine, "Vary") or "")

    # And a page at the other app's origin may not read the answer for this app's token
    theirs = api.with_token("POST", "/v1/client/sms/challenge", token, headers={"Origin": blog})
    assert theirs.status == 409
    assert not cors_headers(theirs)

    # But a refused token names no app: its 401 is readable from any live app's origin
    refused = api.with_token(
        "POST", "/v1/client/sms/verify", "not-a-token", {"code": "123456"}, headers={"Origin": blog}
    )
    assert refused.status == 401
    assert header(refused, "Access-Control-Allow-Origin") == blog


def test_server_and_admin_routes_send_no_cors_headers(api: Api, new_app) -> None:  # noqa: F811
    origin = f"https://{uuid.uuid4().hex[:12]}.example"
    _, key = new_app({"allowedOrigins": [origin]})
    tracked = api.call(
        "POST",
        "/v1/track",
        {"userId": f"e2e-{uuid.uuid4()}", "action": "signIn"},
        auth=f"Bearer {key}",
        headers={"Origin": origin},
    )
    assert tracked.status == 200
    assert not cors_headers(tracked)
    if not api.admin_key:
        pytest.skip("ADMIN_KEY is not set for the deployed stack")
    listed = api.call("GET", "/v1/admin/apps", auth=f"Bearer {api.admin_key}", headers={"Origin": origin})
    assert listed.status == 200
    assert not cors_headers(listed)
