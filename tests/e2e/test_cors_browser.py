"""The client routes' CORS in a real browser (Playwright with Debian's chromium) against the local stack: a page at
an app's allowed origin calls a client route with the app's client token and reads the answer; a page at an
origin no app allows cannot (the browser refuses the preflight); a page at another app's origin cannot read this
app's answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Api
from tests.e2e.test_apps import new_app  # noqa: F401 - the fixture: apps made for a test, deleted after it

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
APP_PAGE = "<!doctype html><title>app</title><p>app</p>"
# What a page's script sees of a cross-origin call: the answer, or the browser's refusal (a TypeError).
CALL = """async ([url, token]) => {
  try {
    const answer = await fetch(url, {method: "POST", headers: {Authorization: "Bearer " + token}});
    return {status: answer.status, code: (await answer.json()).code};
  } catch (error) {
    return {refused: error.name};
  }
}"""


@pytest.fixture(scope="module")
def browser(api: Api) -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not api.local:
        pytest.skip("the browser tests run against the local stack")
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed: run `make install` (apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        # Playwright serves the app pages at addresses it makes up, which Chrome counts as public, and its local
        # network access checks refuse a public page's call to the loopback stack (a deployed stack is public).
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-features=LocalNetworkAccessChecks"],
        )
        yield launched
        launched.close()


def app_page(browser: Any, origin: str) -> Any:
    page = browser.new_page()
    page.route(f"{origin}/*", lambda route: route.fulfill(status=200, content_type="text/html", body=APP_PAGE))
    page.goto(f"{origin}/app")
    return page


def client_token(api: Api, key: str) -> str:
    tracked = api.call("POST", "/v1/track", {"userId": f"e2e-{uuid.uuid4()}", "action": "signIn"}, auth=f"Bearer {key}")
    assert tracked.status == 200, tracked.body
    token: str = tracked.body["token"]
    return token


def test_a_page_at_the_app_s_origin_reads_the_client_route_s_answer(api: Api, browser: Any, new_app: Any) -> None:  # noqa: F811
    # Given an app allowing one origin, and a client token of it (the user is not enrolled)
    origin = "http://localhost:8771"
    _, key = new_app({"allowedOrigins": [origin]})
    page = app_page(browser, origin)

    # When the app's page calls the client challenge route with the token
    result = page.evaluate(CALL, [f"{api.url}/v1/client/sms/challenge", client_token(api, key)])

    # Then the browser let it read the answer: 409, the user has no number (and no SMS went out)
    assert result == {"status": 409, "code": "CONFLICT"}
    page.close()


def test_a_page_at_an_origin_no_app_allows_cannot_call_the_client_routes(
    api: Api,
    browser: Any,
    new_app: Any,  # noqa: F811
) -> None:
    _, key = new_app({"allowedOrigins": ["http://localhost:8772"]})
    page = app_page(browser, "http://localhost:8773")
    result = page.evaluate(CALL, [f"{api.url}/v1/client/sms/challenge", client_token(api, key)])
    assert result == {"refused": "TypeError"}
    page.close()


def test_a_page_at_another_app_s_origin_cannot_read_this_app_s_answers(
    api: Api,
    browser: Any,
    new_app: Any,  # noqa: F811
) -> None:
    # Given two apps with their own origins, and a token of the first
    _, shop_key = new_app({"allowedOrigins": ["http://localhost:8774"]}, label="shop")
    new_app({"allowedOrigins": ["http://localhost:8775"]}, label="blog")
    token = client_token(api, shop_key)

    # When the second app's page uses the first app's token: the preflight passes (it names no app), the answer
    # is not readable
    page = app_page(browser, "http://localhost:8775")
    result = page.evaluate(CALL, [f"{api.url}/v1/client/sms/challenge", token])
    assert result == {"refused": "TypeError"}
    page.close()
