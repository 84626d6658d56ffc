"""The hosted challenge page in a real browser (Playwright with Debian's chromium) against the local stack:
enroll then verify, sign-in MFA, a wrong then the right code, the resend countdown, a reload that sends no
second SMS, an expired token, a code's attempts used up, a number locked by wrong codes across challenges, a
send over the send cap (the wait its Retry-After asks for), a code that expired while the page was open, a new
link opened in the same tab, the redirect and postMessage hand-offs, a forbidden redirectUrl, keyboard-only use,
and an axe-core scan of each state with no serious or critical violation. Screenshots of each state go to
artifacts/hosted-page/ (git-ignored)."""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import E2E_POLICY, Api
from tests.e2e.test_apps import new_app  # noqa: F401 - the fixture: apps made for a test, deleted after it

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "hosted-page"
STORAGE_KEY = "sms-otp:token"
TIMEOUT_MS = 15_000
# The page's English catalogue (otp_core.page_strings), as the user reads it.
EN: dict[str, str] = {}


@pytest.fixture(scope="module")
def browser(api: Api) -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not api.local:
        pytest.skip("the browser tests read codes from the local stack's outbox")
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed: run `make install` (apt-get install chromium)")
    from otp_core.page_strings import CATALOGUES

    EN.update(CATALOGUES["en"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="en-US")
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    context.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def status_is(page: Any, key: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_have_text(EN[key])


def no_serious_violation(page: Any, state: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    serious = [(v["id"], v["impact"]) for v in violations if v.get("impact") in ("serious", "critical")]
    assert not serious, (state, serious)


def track(api: Api, user: str, key: str | None = None, **attributes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"userId": user, "action": "signIn"}
    if attributes:
        body["attributes"] = attributes
    reply = api.call("POST", "/v1/track", body, auth=None if key is None else f"Bearer {key}")
    if key is None:
        reply = api.call("POST", "/v1/track", body)
    assert reply.status == 200, reply.body
    assert reply.body["url"].startswith(f"{api.url}/v1/hosted/challenge#token=")
    result: dict[str, Any] = reply.body
    return result


def enrolled_user(api: Api, phone: str, key: str | None = None) -> str:
    """A new user with ``phone`` enrolled, of the default app or of the app whose API key is ``key``."""
    user = f"e2e-{uuid.uuid4()}"
    body = {"verificationMethod": "SMS", "phoneNumber": phone}
    reply = api.call(
        "POST", f"/v1/users/{user}/authenticators", body, auth="default" if key is None else f"Bearer {key}"
    )
    assert reply.status == 201, reply.body
    return user


def code_of(api: Api, phone: str) -> str:
    """The code of the newest SMS to ``phone``, waiting for the page's send to reach the outbox."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not api.outbox(phone) and time.monotonic() < deadline:
        time.sleep(0.1)
    match = re.search(r"\b(\d{4,10})\b", api.outbox(phone)[-1])
    assert match is not None
    return match.group(1)


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def wrong_codes(right: str, count: int) -> list[str]:
    """``count`` different codes of the right one's length, none of them the right one."""
    size = len(right)
    return [f"{(int(right) + step) % 10**size:0{size}d}" for step in range(1, count + 1)]


def ready_to_check(page: Any) -> None:
    """Wait until the page takes a code again: it ignores a submit while the previous check's answer is handled."""
    from playwright.sync_api import expect

    expect(page.locator("#verify")).to_be_enabled()


def enter(page: Any, code: str) -> Any:
    """Type a code and press Enter; the verify answer the page received (its status is not checked)."""
    ready_to_check(page)
    page.locator("#code").fill(code)
    with page.expect_response(lambda r: r.url.endswith("/v1/client/sms/verify")) as answer:
        page.locator("#code").press("Enter")
    return answer.value


def resend(page: Any) -> Any:
    """Click "Send a new code" once it is enabled; the send answer the page received."""
    from playwright.sync_api import expect

    expect(page.locator("#resend")).to_be_enabled()
    with page.expect_response(lambda r: r.url.endswith("/v1/client/sms/challenge")) as answer:
        page.locator("#resend").click()
    return answer.value


def opened(api: Api, page: Any, user: str, key: str) -> dict[str, Any]:
    """Open the hosted page of a tracked sign-in of ``user``; the challenge the page's first send returned."""
    with page.expect_response(lambda r: r.url.endswith("/v1/client/sms/challenge")) as answer:
        page.goto(track(api, user, key=key)["url"])
    assert answer.value.status == 200, answer.value.text()
    page.locator("#code").wait_for(state="visible")
    sent: dict[str, Any] = answer.value.json()
    return sent


def finish(page: Any) -> str:
    """The success token the page handed off: read from the verify answer the page received."""
    ready_to_check(page)
    with page.expect_response(lambda r: r.url.endswith("/v1/client/sms/verify")) as answer:
        page.locator("#code").press("Enter")
    body = answer.value.json()
    assert body["isVerified"] is True, body
    token: str = body["token"]
    return token


def test_an_unenrolled_user_enrolls_then_verifies(api: Api, page: Any, phone: str) -> None:
    # Given a user with no number, tracked
    tracked = track(api, f"e2e-{uuid.uuid4()}")
    assert tracked["state"] == "ALLOW"

    # When the page opens, the token leaves the address bar for the tab's sessionStorage
    page.goto(tracked["url"])
    page.locator("#phone").wait_for(state="visible")
    assert "#token" not in page.url and "token" not in page.url
    assert page.evaluate(f"sessionStorage.getItem({STORAGE_KEY!r})") == tracked["token"]
    assert page.locator("#phone-form h2").inner_text() == EN["phone_heading"]
    shot(page, "1-phone")
    no_serious_violation(page, "phone form")

    # And the user types a number and presses Enter, then the code
    page.locator("#phone").fill(phone)
    page.locator("#phone").press("Enter")
    page.locator("#code").wait_for(state="visible")
    assert "2" in page.locator("#sent-to").inner_text()
    shot(page, "2-code")
    no_serious_violation(page, "code form")
    page.locator("#code").fill(code_of(api, phone))
    token = finish(page)

    # Then the page says so and forgets the token; the success token validates once for the action
    status_is(page, "success")
    assert page.evaluate(f"sessionStorage.getItem({STORAGE_KEY!r})") is None
    shot(page, "5-success")
    no_serious_violation(page, "success")
    validated = api.call("POST", "/v1/validate", {"token": token, "action": "signIn"})
    assert validated.body["isValid"] is True, validated.body


def test_an_enrolled_user_gets_the_code_at_once_and_a_reload_sends_no_second_sms(
    api: Api, page: Any, phone: str
) -> None:
    # Given an enrolled user's sign-in, tracked
    tracked = track(api, enrolled_user(api, phone))
    assert tracked["state"] == "CHALLENGE_REQUIRED"

    # When the page opens, the code is sent at once and the code field shows
    page.goto(tracked["url"])
    page.locator("#code").wait_for(state="visible")
    assert len(api.outbox(phone)) == 1
    # And a reload inside the cooldown shows the code field again without a second SMS
    page.reload()
    page.locator("#code").wait_for(state="visible")
    status_is(page, "sent")
    assert len(api.outbox(phone)) == 1

    # Then the one code verifies
    page.locator("#code").fill(code_of(api, phone))
    finish(page)
    status_is(page, "success")


def test_a_wrong_code_then_the_right_one(api: Api, page: Any, phone: str) -> None:
    tracked = track(api, enrolled_user(api, phone))
    page.goto(tracked["url"])
    page.locator("#code").wait_for(state="visible")
    right = code_of(api, phone)
    wrong = ("1" if right[0] != "1" else "2") + right[1:]

    # When a wrong code is entered, the live region says it is wrong and how many attempts are left
    page.locator("#code").fill(wrong)
    page.locator("#code").press("Enter")
    status_is(page, "wrong")
    assert page.locator("#status").get_attribute("aria-live") == "polite"
    assert re.search(r"\d", page.locator("#attempts").inner_text())
    shot(page, "3-wrong")
    no_serious_violation(page, "wrong code")

    # Then the right one still verifies (a code keeps its leading zeros: the field holds text)
    page.locator("#code").fill(right)
    assert page.locator("#code").input_value() == right
    finish(page)
    status_is(page, "success")


def sms_count_reaches(api: Api, phone: str, count: int) -> None:
    """Wait for the ``count``-th SMS to ``phone`` to reach the outbox."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while len(api.outbox(phone)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(api.outbox(phone)) == count


def lockout_threshold(api: Api) -> int:
    """The local stack's LockoutThreshold (a stack parameter, not an app setting): wrong codes that lock a number.
    The stack reads it from its environment: the e2e policy's, else this process's, else the setting's default."""
    from otp_core.settings import Policy

    assert api.local
    environment = {**os.environ, **E2E_POLICY}
    return int(environment.get("LOCKOUT_THRESHOLD") or Policy.model_fields["lockout_threshold"].default)


def test_wrong_codes_until_none_is_left_say_so_and_a_new_code_can_be_asked_for(
    api: Api,
    page: Any,
    new_app: Any,  # noqa: F811
    phone: str,
) -> None:
    from playwright.sync_api import expect

    # Given an app allowing 3 attempts per code and no resend cooldown, and an enrolled user of it on the page
    _, key = new_app({"maxAttempts": 3, "resendCooldownSeconds": 0})
    opened(api, page, enrolled_user(api, phone, key), key)
    right = code_of(api, phone)

    # When the user types wrong codes until no attempt is left
    *first, last = wrong_codes(right, 3)
    for tried, code in enumerate(first, start=1):
        enter(page, code)
        status_is(page, "wrong")
        expect(page.locator("#attempts")).to_have_text(EN["attempts_left"].format(count=3 - tried))
    enter(page, last)

    # Then the live region says the code is used up (not merely wrong), and no attempt is left
    status_is(page, "exhausted")
    assert EN["exhausted"] not in (EN["wrong"], EN["expired"])
    expect(page.locator("#attempts")).to_have_text(EN["attempts_left"].format(count=0))
    shot(page, "8-exhausted")
    no_serious_violation(page, "exhausted")
    # And even the right code no longer verifies
    refused = enter(page, right).json()
    assert (refused["isVerified"], refused["failureReason"]) == (False, "MAX_ATTEMPTS_EXCEEDED"), refused
    status_is(page, "exhausted")

    # When the user asks for a new code (the page offers it at once: the cooldown is 0)
    assert resend(page).status == 200

    # Then a second SMS brings a new code, the attempts hint is cleared, and the new code verifies
    status_is(page, "sent")
    sms_count_reaches(api, phone, 2)
    assert page.locator("#attempts").inner_text() == ""
    new = code_of(api, phone)
    assert new != right
    page.locator("#code").fill(new)
    finish(page)
    status_is(page, "success")


def test_wrong_codes_across_challenges_lock_the_number(
    api: Api,
    page: Any,
    new_app: Any,  # noqa: F811
    phone: str,
) -> None:
    from playwright.sync_api import expect

    # Given the stack's lockout threshold (wrong codes per number in the lockout window; 10 by default) and an
    # app whose codes allow more than half of it, so the lock falls inside the second code's attempts
    threshold = lockout_threshold(api)
    attempts = min(10, threshold // 2 + 1)
    assert attempts < threshold < 2 * attempts, "two codes' attempts must reach the lockout threshold"
    _, key = new_app({"maxAttempts": attempts, "resendCooldownSeconds": 0})
    opened(api, page, enrolled_user(api, phone, key), key)

    # When the user uses up the first code's attempts
    for code in wrong_codes(code_of(api, phone), attempts):
        enter(page, code)
    status_is(page, "exhausted")
    # And asks for a new code, then types wrong ones until the number has failed the threshold's number of times
    assert resend(page).status == 200
    sms_count_reaches(api, phone, 2)
    right = code_of(api, phone)
    for code in wrong_codes(right, threshold - attempts):
        assert enter(page, code).status == 200
        status_is(page, "wrong")

    # Then the next code, even the right one, is refused for a while, and the live region says the number is locked
    refused = enter(page, right)
    assert refused.status == 429, refused.text()
    assert int(refused.headers["retry-after"]) > 0
    status_is(page, "locked")
    assert EN["locked"] not in (EN["wrong"], EN["exhausted"], EN["rate_limited"])
    shot(page, "9-locked")
    no_serious_violation(page, "locked")
    # And the page is not stuck: the code form stays, ready for a later try
    expect(page.locator("#code-form")).to_be_visible()
    expect(page.locator("#verify")).to_be_enabled()


def test_a_send_over_the_send_cap_says_too_many_codes_and_the_page_carries_on(
    api: Api,
    page: Any,
    new_app: Any,  # noqa: F811
    phone: str,
) -> None:
    from playwright.sync_api import expect

    # Given an app allowing one SMS per number in 10 minutes and no resend cooldown, an enrolled user on the page
    _, key = new_app({"maxSendsPer10Minutes": 1, "resendCooldownSeconds": 0})
    user = enrolled_user(api, phone, key)
    opened(api, page, user, key)
    right = code_of(api, phone)

    # When the user asks for a second code
    refused = resend(page)

    # Then the send is refused with a wait, nothing is sent, and the live region says too many codes were sent
    assert refused.status == 429, refused.text()
    wait = int(refused.headers["retry-after"])
    assert wait > 0
    status_is(page, "rate_limited")
    assert EN["rate_limited"] not in (EN["wrong"], EN["exhausted"], EN["locked"], EN["failed"])
    assert len(api.outbox(phone)) == 1
    # And no new code is offered before the wait is over (the cooldown of 0 would offer one at once): the button is
    # disabled and the countdown runs from Retry-After
    waits_for(page, wait)
    shot(page, "10-rate-limited")
    no_serious_violation(page, "rate limited")
    # And the page carries on: the code form stays and the code already sent still verifies
    expect(page.locator("#code-form")).to_be_visible()
    page.locator("#code").fill(right)
    finish(page)
    status_is(page, "success")

    # And a new sign-in inside the window opens on the same message (its first send is over the cap too); from
    # another page, as a user follows a link (to the page itself the link would change the fragment only)
    page.goto("about:blank")
    with page.expect_response(lambda r: r.url.endswith("/v1/client/sms/challenge")) as answer:
        page.goto(track(api, user, key=key)["url"])
    assert answer.value.status == 429
    status_is(page, "rate_limited")
    assert len(api.outbox(phone)) == 1
    # And it offers a code only once the wait is over: the code form with "Send a new code" disabled and its
    # countdown (no code of this sign-in went out, so there is nothing to type yet)
    expect(page.locator("#code-form")).to_be_visible()
    expect(page.locator("#code")).to_be_disabled()
    waits_for(page, int(answer.value.headers["retry-after"]))


def waits_for(page: Any, wait: int) -> None:
    """The page offers no new code for ``wait`` seconds (a 429's Retry-After): "Send a new code" is disabled,
    stays so, and the countdown shows the seconds left."""
    from playwright.sync_api import expect

    resend_button, countdown = page.locator("#resend"), page.locator("#countdown")
    expect(resend_button).to_be_disabled()
    expect(countdown).to_have_text(re.compile(r"\d+ s"))
    seconds = int(re.findall(r"\d+", countdown.inner_text())[-1])
    assert wait - 3 <= seconds <= wait, (seconds, wait)
    assert countdown.inner_text() == EN["resend_in"].format(seconds=seconds)
    page.wait_for_timeout(1500)
    expect(resend_button).to_be_disabled()
    assert int(re.findall(r"\d+", countdown.inner_text())[-1]) < seconds


def test_a_code_that_expired_while_the_page_was_open_says_it_expired(
    api: Api,
    page: Any,
    new_app: Any,  # noqa: F811
    phone: str,
) -> None:
    from datetime import datetime

    from playwright.sync_api import expect

    # Given an app whose codes live 60 seconds (the shortest codeTtlSeconds), and an enrolled user on the page
    _, key = new_app({"codeTtlSeconds": 60})
    sent = opened(api, page, enrolled_user(api, phone, key), key)
    right = code_of(api, phone)

    # When the user types the right code only after it expired (the page stays open meanwhile)
    expires_at = datetime.fromisoformat(sent["expiresAt"]).timestamp()
    page.wait_for_timeout((max(0.0, expires_at - time.time()) + 1.5) * 1000)
    answer = enter(page, right).json()
    assert (answer["isVerified"], answer["failureReason"]) == (False, "CODE_INVALID_OR_EXPIRED"), answer
    expect(page.locator("#status")).not_to_have_text(EN["checking"])
    shown = page.locator("#status").inner_text()
    shot(page, "11-code-expired")
    no_serious_violation(page, "code expired")

    # And asks for a new code (the 30-second cooldown is over): a second SMS, whose code verifies
    assert resend(page).status == 200
    sms_count_reaches(api, phone, 2)
    page.locator("#code").fill(code_of(api, phone))
    finish(page)
    status_is(page, "success")

    # Then the live region had said that the code expired, not that too many wrong codes were typed
    assert shown == EN["expired"], shown


def test_a_new_link_opened_in_the_same_tab_takes_over(
    api: Api,
    page: Any,
    new_app: Any,  # noqa: F811
    new_phone: Any,
) -> None:
    from playwright.sync_api import expect

    # Given the page of an enrolled user's sign-in, a wrong code typed (the hint shows the attempts left)
    first_phone, second_phone = new_phone(), new_phone()
    _, key = new_app()
    opened(api, page, enrolled_user(api, first_phone, key), key)
    enter(page, wrong_codes(code_of(api, first_phone), 1)[0])
    status_is(page, "wrong")
    expect(page.locator("#attempts")).not_to_have_text("")
    page.evaluate("window.sameDocument = true")

    # When a link of another user's sign-in (no number yet) opens in the same tab: only the fragment changes
    second = f"e2e-{uuid.uuid4()}"
    tracked = track(api, second, key=key)
    assert tracked["url"].split("#", 1)[0] == page.url
    with page.expect_response(lambda r: r.url.endswith("/v1/client/sms/challenge")) as answer:
        page.goto(tracked["url"])
    assert answer.value.status == 409, answer.value.text()
    assert page.evaluate("window.sameDocument") is True, "the page was loaded again: no hashchange to handle"

    # Then the new token replaced the first in the tab's sessionStorage and left the address bar
    page.locator("#phone").wait_for(state="visible")
    assert "token" not in page.url and "#" not in page.url
    assert page.evaluate(f"sessionStorage.getItem({STORAGE_KEY!r})") == tracked["token"]
    # And the page started over for the new sign-in: the phone form, nothing left of the first user's code
    expect(page.locator("#code-form")).to_be_hidden()
    assert page.locator("#status").inner_text() == ""
    assert page.locator("#attempts").inner_text() == page.locator("#sent-to").inner_text() == ""
    assert page.locator("#code").input_value() == ""

    # And the new user enrolls and verifies: the success token is the new sign-in's, of the new user
    page.locator("#phone").fill(second_phone)
    page.locator("#phone").press("Enter")
    page.locator("#code").wait_for(state="visible")
    status_is(page, "sent")
    assert page.locator("#attempts").inner_text() == ""
    page.locator("#code").fill(code_of(api, second_phone))
    token = finish(page)
    status_is(page, "success")
    assert (claims(token)["sub"], claims(token)["trk"]) == (second, claims(tracked["token"])["trk"])
    assert page.evaluate(f"sessionStorage.getItem({STORAGE_KEY!r})") is None
    # (and the first sign-in sent its one code, to its own number)
    assert len(api.outbox(first_phone)) == 1


def test_resend_counts_down_and_is_disabled_on_click(api: Api, page: Any, new_app: Any, phone: str) -> None:  # noqa: F811
    from playwright.sync_api import expect

    # Given an app with a 3-second resend cooldown and an enrolled user of it, on the page
    _, key = new_app({"resendCooldownSeconds": 3})
    user = f"e2e-{uuid.uuid4()}"
    enrolled = api.call(
        "POST",
        f"/v1/users/{user}/authenticators",
        {"verificationMethod": "SMS", "phoneNumber": phone},
        auth=f"Bearer {key}",
    )
    assert enrolled.status == 201, enrolled.body
    page.goto(track(api, user, key=key)["url"])
    page.locator("#code").wait_for(state="visible")

    # Then inside the cooldown the resend button is disabled and a countdown in seconds shows
    resend = page.locator("#resend")
    expect(resend).to_be_disabled()
    assert re.search(r"[1-3] s", page.locator("#countdown").inner_text())
    shot(page, "4-countdown")

    # When the cooldown is over the button is enabled (locator waits: the page's CSP forbids string evaluation)
    expect(resend).to_be_enabled(timeout=6000)
    assert page.locator("#countdown").inner_text() == ""
    # And a click disables it at once and sends a second SMS, with a new, longer countdown (the cooldown doubles)
    resend.click()
    expect(resend).to_be_disabled()
    deadline = time.monotonic() + 10
    while len(api.outbox(phone)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(api.outbox(phone)) == 2
    expect(page.locator("#countdown")).to_have_text(re.compile(r"\d+ s"))
    # Then the new code verifies
    page.locator("#code").fill(code_of(api, phone))
    finish(page)
    status_is(page, "success")


def test_an_expired_or_invalid_token_shows_that_the_link_expired(api: Api, page: Any) -> None:
    # Given a token whose exp has passed (the page reads it without a call) and a token the API refuses
    header = base64.urlsafe_b64encode(b'{"alg":"ES256"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps({"exp": int(time.time()) - 5}).encode()).rstrip(b"=").decode()
    for token in (f"{header}.{payload}.sig", f"{header}.{base64.urlsafe_b64encode(b'{}').decode()}.x"):
        page.goto(f"{api.url}/v1/hosted/challenge#token={token}")
        # Then the page says the link expired, shows no form, and keeps no token
        status_is(page, "session_expired")
        assert page.locator("#code-form").is_hidden() and page.locator("#phone-form").is_hidden()
        assert page.evaluate(f"sessionStorage.getItem({STORAGE_KEY!r})") is None
    shot(page, "6-expired")
    no_serious_violation(page, "expired")

    # And a real token the API refuses (another stack's, or tampered) ends the same way
    tracked = track(api, f"e2e-{uuid.uuid4()}")
    page.goto(tracked["url"][:-4] + "AAAA")
    status_is(page, "session_expired")


def test_the_success_token_is_handed_to_the_allowed_redirect_url(api: Api, page: Any, new_app: Any, phone: str) -> None:  # noqa: F811
    # Given an app that lists a redirect URL, and a track that names it
    done = "http://localhost:8765/done"
    _, key = new_app({"redirectUrls": [done]})
    page.route(f"{done}*", lambda route: route.fulfill(status=200, content_type="text/html", body="<p>done</p>"))
    tracked = track(api, f"e2e-{uuid.uuid4()}", key=key, redirectUrl=done)

    # When the user enrolls and verifies on the page
    page.goto(tracked["url"])
    page.locator("#phone").fill(phone)
    page.locator("#phone").press("Enter")
    page.locator("#code").fill(code_of(api, phone))
    page.locator("#code").press("Enter")

    # Then the browser lands on the redirect URL with the success token in its fragment
    page.wait_for_url(f"{done}#token=*")
    token = page.url.split("#token=", 1)[1]
    assert claims(token)["state"] == "CHALLENGE_SUCCEEDED"
    assert claims(token)["rdr"] == done
    validated = api.call("POST", "/v1/validate", {"token": token}, auth=f"Bearer {key}")
    assert validated.body["isValid"] is True, validated.body


def test_a_redirect_url_off_the_app_s_list_is_refused_at_track(api: Api, new_app: Any) -> None:  # noqa: F811
    _, key = new_app({"redirectUrls": ["https://shop.example/done"]})
    body = {"userId": f"e2e-{uuid.uuid4()}", "action": "signIn", "attributes": {"redirectUrl": "https://evil.example/"}}
    refused = api.call("POST", "/v1/track", body, auth=f"Bearer {key}")
    assert refused.status == 400
    assert refused.body["code"] == "INVALID_REQUEST"


def test_the_success_token_is_posted_to_the_opener_at_the_allowed_origin_only(
    api: Api,
    page: Any,
    new_app: Any,  # noqa: F811
    phone: str,
) -> None:
    # Given an app allowing one origin, whose page opens the hosted page in a popup and listens for messages
    origin = "http://localhost:8766"
    _, key = new_app({"allowedOrigins": [origin]})
    opener = (
        "<!doctype html><title>app</title><script>window.got = [];"
        "addEventListener('message', (e) => window.got.push({origin: e.origin, data: e.data}));</script>"
    )
    page.route(f"{origin}/*", lambda route: route.fulfill(status=200, content_type="text/html", body=opener))
    page.goto(f"{origin}/app")
    tracked = track(api, f"e2e-{uuid.uuid4()}", key=key)
    with page.context.expect_page() as popup_info:
        page.evaluate("(url) => { window.open(url); }", tracked["url"])
    popup = popup_info.value
    popup.set_default_timeout(TIMEOUT_MS)

    # When the user completes the challenge in the popup
    popup.locator("#phone").fill(phone)
    popup.locator("#phone").press("Enter")
    popup.locator("#code").fill(code_of(api, phone))
    token = finish(popup)

    # Then the opener got exactly one message, of the contract's shape, from the stack's origin
    page.wait_for_function("window.got.length > 0")
    got = page.evaluate("window.got")
    assert got == [{"origin": api.url, "data": {"type": "sms-otp:result", "token": token}}]
    assert claims(token)["ori"] == [origin]


@pytest.fixture
def framing_page(browser: Any) -> Iterator[Any]:
    """A page of a browser without Chrome's local network access checks: the app page Playwright serves has no
    address, so Chrome counts it as public and refuses to frame the stack's loopback address (a deployed stack
    is public too, so the check never applies to it)."""
    launched = browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-features=LocalNetworkAccessChecks"],
    )
    opened = launched.new_page(locale="en-US")
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    launched.close()


def test_the_success_token_is_posted_to_the_framing_parent_at_the_allowed_origin(
    api: Api,
    framing_page: Any,
    new_app: Any,  # noqa: F811
    phone: str,
) -> None:
    page = framing_page
    # Given an app page at an allowed origin that frames the hosted page (frame-ancestors lets it)
    origin = "http://localhost:8767"
    _, key = new_app({"allowedOrigins": [origin]})
    tracked = track(api, f"e2e-{uuid.uuid4()}", key=key)
    parent = (
        "<!doctype html><title>app</title><script>window.got = [];"
        "addEventListener('message', (e) => window.got.push({origin: e.origin, data: e.data}));</script>"
        f'<iframe title="verify" src="{tracked["url"]}" width="600" height="700"></iframe>'
    )
    page.route(f"{origin}/*", lambda route: route.fulfill(status=200, content_type="text/html", body=parent))
    page.goto(f"{origin}/app")
    frame = page.frame_locator("iframe")

    # When the user completes the challenge inside the frame
    frame.locator("#phone").fill(phone)
    frame.locator("#phone").press("Enter")
    frame.locator("#code").fill(code_of(api, phone))
    frame.locator("#code").press("Enter")

    # Then the parent got the token from the stack's origin, once
    page.wait_for_function("window.got.length > 0")
    got = page.evaluate("window.got")
    assert [(m["origin"], m["data"]["type"]) for m in got] == [(api.url, "sms-otp:result")]
    assert claims(got[0]["data"]["token"])["state"] == "CHALLENGE_SUCCEEDED"


def test_keyboard_only_completion(api: Api, page: Any, phone: str) -> None:
    # Given the page of an unenrolled user
    tracked = track(api, f"e2e-{uuid.uuid4()}")
    page.goto(tracked["url"])
    page.locator("#phone").wait_for(state="visible")

    # When the user only uses the keyboard: Tab to the field, type, Enter; type the code, Enter
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Tab")
    for _ in range(5):
        if page.evaluate("document.activeElement.id") == "phone":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "phone"
    page.keyboard.type(phone)
    page.keyboard.press("Enter")
    page.locator("#code").wait_for(state="visible")
    # (the code field takes the focus by itself)
    assert page.evaluate("document.activeElement.id") == "code"
    page.keyboard.type(code_of(api, phone))
    # Focus is visible: the focused field has an outline
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")

    # Then the challenge succeeds
    status_is(page, "success")


def test_the_country_picker_defaults_from_the_locale_and_takes_a_national_number(
    api: Api, page: Any, phone: str
) -> None:
    # Given an en-US browser on the page of an unenrolled user
    tracked = track(api, f"e2e-{uuid.uuid4()}")
    page.goto(tracked["url"])
    page.locator("#phone").wait_for(state="visible")

    # Then the picker shows the United States' calling code
    assert page.locator("#country").input_value() == "+1"

    # When the user types the national number only, the code goes to the full E.164 number
    page.locator("#phone").fill(phone.removeprefix("+1"))
    page.locator("#phone").press("Enter")
    page.locator("#code").wait_for(state="visible")
    assert code_of(api, phone)


def test_the_page_follows_the_browser_language_and_dark_mode(browser: Any, api: Api) -> None:
    from otp_core.page_strings import CATALOGUES

    context = browser.new_context(locale="de-DE", color_scheme="dark")
    try:
        page = context.new_page()
        tracked = track(api, f"e2e-{uuid.uuid4()}")
        page.goto(tracked["url"])
        page.locator("#phone").wait_for(state="visible")
        assert page.locator("h1").inner_text() == CATALOGUES["de"]["title"]
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background != "rgb(255, 255, 255)"
        shot(page, "7-dark-de")
        no_serious_violation(page, "dark German")
    finally:
        context.close()
