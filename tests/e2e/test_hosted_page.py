"""The hosted challenge page over HTTP: the contract's headers on the page and its assets, the language from
Accept-Language, frame-ancestors from the apps' allowedOrigins, and /v1/track's url that opens it."""

from __future__ import annotations

import urllib.request
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Api
from tests.e2e.test_apps import new_app  # noqa: F401 - the fixture: apps made for a test, deleted after it

pytestmark = pytest.mark.e2e

PAGE = "/v1/hosted/challenge"


def fetch(api: Api, path: str, **headers: str) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(api.url + path, method="GET", headers=headers)  # noqa: S310 - the stack's URL
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode("utf-8")


def _csp(headers: dict[str, str]) -> dict[str, list[str]]:
    directives = [part.strip().split() for part in headers["content-security-policy"].split(";") if part.strip()]
    return {directive[0]: directive[1:] for directive in directives}


def test_the_page_is_served_with_the_contract_s_headers(api: Api) -> None:
    # When a browser asks for the page in French
    status, headers, body = fetch(api, PAGE, **{"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"})

    # Then it is French HTML with the contract's headers, nothing third-party and never stored
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    csp = _csp(headers)
    assert csp["default-src"] == ["'self'"]
    assert csp["frame-ancestors"]
    assert '<html lang="fr">' in body
    assert 'autocomplete="one-time-code"' in body
    assert "http://" not in body.replace('content="width', "") and "https://" not in body


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/hosted/challenge.js", "text/javascript; charset=utf-8"),
        ("/v1/hosted/challenge.css", "text/css; charset=utf-8"),
        ("/v1/hosted/sms-otp.js", "text/javascript; charset=utf-8"),
    ],
)
def test_the_assets_are_served_in_their_types(api: Api, path: str, content_type: str) -> None:
    status, headers, body = fetch(api, path)
    assert status == 200
    assert headers["content-type"] == content_type
    assert headers["x-content-type-options"] == "nosniff"
    assert body.strip()


def test_frame_ancestors_follow_the_apps_allowed_origins(api: Api, new_app: Any) -> None:  # noqa: F811
    # Given an app that allows an origin
    origin = f"https://{uuid.uuid4().hex[:10]}.example"
    new_app({"allowedOrigins": [origin]})

    # Then the page may be framed by it (the page's URL names no app: every live app's origins count)
    assert origin in _csp(fetch(api, PAGE)[1])["frame-ancestors"]
    assert "*" not in _csp(fetch(api, PAGE)[1])["frame-ancestors"]


def test_track_answers_the_url_of_the_page_with_the_token_in_the_fragment(api: Api) -> None:
    # When a user's sign-in is tracked
    tracked = api.call("POST", "/v1/track", {"userId": f"e2e-{uuid.uuid4()}", "action": "signIn"})

    # Then the url opens this stack's page, the client token in the fragment only
    assert tracked.status == 200, tracked.body
    assert tracked.body["url"] == f"{api.url}{PAGE}#token={tracked.body['token']}"
    page, _, _ = tracked.body["url"].partition("#")
    assert "?" not in page
    assert fetch(api, page.removeprefix(api.url))[0] == 200
