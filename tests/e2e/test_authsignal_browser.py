"""The Authsignal facade's client routes driven by the real npm ``@authsignal/browser`` SDK in Debian's Chromium
(Playwright), against the local stack: an app page at the app's allowed origin loads the SDK's browser build,
points its ``baseUrl`` at the stack, and enrolls, challenges and verifies by SMS with the client token its server
got from ``track``; an invalid token takes the SDK's expired-token path. The server side is the Python SDK."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Api
from tests.e2e.test_apps import new_app  # noqa: F401 - the fixture: apps made for a test, deleted after it
from tests.e2e.test_cors_browser import browser  # noqa: F401 - the fixture: Debian's chromium under Playwright

pytestmark = pytest.mark.e2e

authsignal = pytest.importorskip("authsignal")
from authsignal import AuthsignalClient  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# The SDK's browser build (an IIFE that defines the global `authsignal`), as an app would serve it.
BUNDLE = ROOT / "node_modules" / "@authsignal" / "browser" / "dist" / "index.min.js"
ORIGIN = "http://localhost:8781"
APP_PAGE = '<!doctype html><html lang="en"><title>shop</title><script src="/authsignal.js"></script><p>shop</p>'

# The app's script: the SDK pointed at the stack's facade, with the token its server passed to the page. Every
# call's answer is returned as the SDK resolves it ({data} or {error, errorCode, errorDescription}).
START = """([baseUrl, tenantId, token]) => {
  window.expired = 0;
  window.sdk = new authsignal.Authsignal({baseUrl, tenantId, onTokenExpired: () => { window.expired += 1; }});
  window.sdk.setToken(token);
  return typeof window.sdk.sms.verify;
}"""
ENROLL = "(phoneNumber) => window.sdk.sms.enroll({phoneNumber})"
CHALLENGE = "() => window.sdk.sms.challenge()"
VERIFY = "(code) => window.sdk.sms.verify({code})"


@pytest.fixture
def shop(api: Api, new_app: Any) -> tuple[str, str]:  # noqa: F811
    """An app whose web origin is the test page's: (app ID, API key)."""
    if not BUNDLE.exists():
        pytest.skip("@authsignal/browser is missing: run `make install` (npm ci)")
    return new_app({"allowedOrigins": [ORIGIN]}, label="shop")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:  # noqa: F811
    """The app's page at its origin, the SDK's build loaded."""
    page = browser.new_page()
    bundle = BUNDLE.read_text()
    page.route(f"{ORIGIN}/authsignal.js", lambda route: route.fulfill(content_type="text/javascript", body=bundle))
    page.route(f"{ORIGIN}/app", lambda route: route.fulfill(content_type="text/html", body=APP_PAGE))
    page.goto(f"{ORIGIN}/app")
    yield page
    page.close()


def server(api: Api, key: str) -> Any:
    return AuthsignalClient(api_secret_key=key, api_url=f"{api.url}/authsignal/v1")


def start(api: Api, page: Any, app_id: str, token: str) -> None:
    assert page.evaluate(START, [f"{api.url}/authsignal/v1", app_id, token]) == "function"


def code_of(api: Api, phone: str, count: int = 1) -> str:
    deadline = time.monotonic() + 10
    while len(api.outbox(phone)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    messages = api.outbox(phone)
    assert len(messages) >= count, "the SMS did not arrive"
    match = re.search(r"\b(\d{4,10})\b", messages[-1])
    assert match is not None
    return match.group(1)


def test_a_new_user_enrolls_a_number_in_the_browser(api: Api, page: Any, shop: tuple[str, str], phone: str) -> None:
    app_id, key = shop
    user = f"e2e-{uuid.uuid4()}"

    # Given the app's server tracked a sign-in of a user with no number, and passed the token to its page
    tracked = server(api, key).track(user_id=user, action="signIn")
    assert tracked["is_enrolled"] is False
    start(api, page, app_id, tracked["token"])

    # When the page enrolls a number with the SDK
    enrolled = page.evaluate(ENROLL, phone)
    assert set(enrolled) == {"data"}, enrolled
    assert enrolled["data"]["userId"] == user and enrolled["data"]["userAuthenticatorId"]
    right = code_of(api, phone)

    # Then a wrong code is refused (the SDK answers data, not an error), and the right one verifies: the SDK
    # answers the success token, which the app's server validates once
    wrong = f"{(int(right) + 1) % 10 ** len(right):0{len(right)}d}"
    missed = page.evaluate(VERIFY, wrong)
    assert missed == {"data": {"isVerified": False, "failureReason": "CODE_INVALID_OR_EXPIRED"}}, missed
    verified = page.evaluate(VERIFY, right)["data"]
    assert verified["isVerified"] is True
    assert verified["userAuthenticator"]["verificationMethod"] == "SMS"
    assert phone not in str(verified)  # the number comes back masked
    validated = server(api, key).validate_challenge({"token": verified["token"]})
    assert validated["is_valid"] is True and validated["user_id"] == user
    assert server(api, key).validate_challenge({"token": verified["token"]})["is_valid"] is False
    (authenticator,) = server(api, key).get_authenticators(user_id=user)
    assert authenticator["verification_method"] == "SMS"


def test_an_enrolled_user_is_challenged_in_the_browser(api: Api, page: Any, shop: tuple[str, str], phone: str) -> None:
    app_id, key = shop
    user = f"e2e-{uuid.uuid4()}"
    server(api, key).enroll_verified_authenticator(
        user_id=user, attributes={"verificationMethod": "SMS", "phoneNumber": phone}
    )
    tracked = server(api, key).track(user_id=user, action="signIn")
    assert tracked["state"] == "CHALLENGE_REQUIRED"
    start(api, page, app_id, tracked["token"])

    # When the page asks for a code and types it
    challenged = page.evaluate(CHALLENGE)
    assert set(challenged) == {"data"} and challenged["data"]["challengeId"], challenged
    verified = page.evaluate(VERIFY, code_of(api, phone))["data"]

    # Then the action succeeded, and the token the SDK now holds is the success token (a second verify with the
    # same code is refused: single use)
    assert verified["isVerified"] is True
    action = server(api, key).get_action(user_id=user, action="signIn", idempotency_key=tracked["idempotency_key"])
    assert action["state"] == "CHALLENGE_SUCCEEDED"
    again = page.evaluate(VERIFY, code_of(api, phone))
    assert again == {"data": {"isVerified": False, "failureReason": again["data"]["failureReason"]}}, again
    assert again["data"]["failureReason"] in ("CODE_INVALID_OR_EXPIRED", "MAX_ATTEMPTS_EXCEEDED"), again
    assert server(api, key).validate_challenge({"token": verified["token"]})["is_valid"] is True


def test_an_invalid_token_takes_the_sdk_s_expired_token_path(
    api: Api, page: Any, shop: tuple[str, str], phone: str
) -> None:
    app_id, key = shop
    user = f"e2e-{uuid.uuid4()}"
    token = server(api, key).track(user_id=user, action="signIn")["token"]
    # A token whose signature does not check (answered as an expired one is), and something that is no token
    for refused in (token[:-6] + "AAAAAA", "not-a-token"):
        start(api, page, app_id, refused)
        for call, argument in ((CHALLENGE, None), (ENROLL, phone), (VERIFY, "123456")):
            answer = page.evaluate(call, argument)
            assert answer["errorCode"] == "expired_token" and answer["errorDescription"], answer
        # The SDK called the app's onTokenExpired once per refused call, so the app can fetch a new token
        assert page.evaluate("window.expired") == 3
    assert api.outbox(phone) == []  # nothing was sent


def test_this_app_s_page_cannot_read_answers_to_another_app_s_token(
    api: Api,
    page: Any,
    shop: tuple[str, str],
    new_app: Any,  # noqa: F811
) -> None:
    # Given a token of an app that allows another origin
    _, other_key = new_app({"allowedOrigins": ["http://localhost:8782"]}, label="blog")
    token = server(api, other_key).track(user_id=f"e2e-{uuid.uuid4()}", action="signIn")["token"]
    app_id, _ = shop
    start(api, page, app_id, token)

    # When this app's page uses it, the browser cannot read the answer: the SDK's fetch fails
    call = "() => window.sdk.sms.challenge().then((answer) => answer, (error) => error.name)"
    assert page.evaluate(call) == "TypeError"

    # While the same page reads the answer to this app's own token (the user has no number: a 409)
    start(api, page, app_id, server(api, shop[1]).track(user_id=f"e2e-{uuid.uuid4()}", action="signIn")["token"])
    own = page.evaluate(call)
    assert own["errorCode"] == "conflict" and own["errorDescription"], own


def test_the_sdk_s_other_factors_answer_a_400_that_names_the_factor(api: Api, page: Any, shop: tuple[str, str]) -> None:
    app_id, key = shop
    start(api, page, app_id, server(api, key).track(user_id=f"e2e-{uuid.uuid4()}", action="signIn")["token"])
    calls = {
        "() => window.sdk.totp.enroll()": "AUTHENTICATOR_APP",
        "() => window.sdk.totp.verify({code: '123456'})": "AUTHENTICATOR_APP",
        "() => window.sdk.email.enroll({email: 'a@example.com'})": "EMAIL_OTP",
        "() => window.sdk.email.challenge()": "EMAIL_OTP",
        "() => window.sdk.whatsapp.challenge()": "WHATSAPP",
        "() => window.sdk.push.challenge({action: 'signIn'})": "PUSH",
    }
    for call, factor in calls.items():
        answer = page.evaluate(call)
        assert answer["errorCode"] == "invalid_request", (call, answer)
        assert factor in answer["errorDescription"], (call, answer)
    assert page.evaluate("window.expired") == 0  # a 400, not an expired token
