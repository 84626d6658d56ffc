"""GET /v1/hosted/challenge and its assets: the contract's headers, the language from Accept-Language, every
string escaped, frame-ancestors from the live apps' allowedOrigins, and the success token's hand-off claims."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from functions.hosted_page import app as hosted
from local.gateway import LambdaContext
from otp_core.app_admin import AppDirectory
from otp_core.page_strings import CATALOGUES, DEFAULT_LOCALE, choose_locale
from otp_core.settings import Policy, Settings

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


class FakeDirectory:
    """The apps directory as the page reads it: every live app with its policy."""

    def __init__(self, *origins: tuple[str, ...]) -> None:
        self._apps = [(f"app-{n}", Settings(allowed_origins=",".join(o)).policy) for n, o in enumerate(origins)]
        self.reads = 0

    def apps(self) -> list[tuple[str, Policy]]:
        self.reads += 1
        return self._apps

    allowed_origins = AppDirectory.allowed_origins  # the union over apps(), as the stack computes it


@pytest.fixture
def directory(monkeypatch: pytest.MonkeyPatch) -> FakeDirectory:
    found = FakeDirectory(("https://shop.example", "http://localhost:8080"), (), ("https://blog.example",))
    monkeypatch.setattr(hosted.runtime, "apps", lambda: found)
    return found


def _context() -> LambdaContext:
    return LambdaContext(
        function_name="hosted-page",
        memory_limit_in_mb=128,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:hosted-page",
        aws_request_id="r-1",
    )


def _event(name: str = "hosted_page", **headers: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    for header, value in headers.items():
        event["headers"][header] = value
        event["multiValueHeaders"][header] = [value]
    return event


def _headers(answer: dict[str, Any]) -> dict[str, str]:
    return {name: values[-1] for name, values in answer["multiValueHeaders"].items()}


def test_the_page_carries_the_contract_s_headers(directory: FakeDirectory) -> None:
    # When the page is fetched
    answer = hosted.lambda_handler(_event(), _context())
    headers = _headers(answer)

    # Then it is HTML, never stored, sent with no referrer, framed only by the live apps' allowed origins
    assert answer["statusCode"] == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == (
        "default-src 'self'; base-uri 'none'; form-action 'none'; object-src 'none'; "
        "frame-ancestors http://localhost:8080 https://blog.example https://shop.example"
    )
    assert directory.reads == 1


def test_with_no_allowed_origin_anywhere_no_one_may_frame_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given apps none of which allows an origin
    monkeypatch.setattr(hosted.runtime, "apps", lambda: FakeDirectory((), ()))

    # When the page is fetched
    headers = _headers(hosted.lambda_handler(_event(), _context()))

    # Then frame-ancestors is 'none'
    assert headers["Content-Security-Policy"].endswith("; frame-ancestors 'none'")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("hosted_page_script", "text/javascript; charset=utf-8"),
        ("hosted_page_style", "text/css; charset=utf-8"),
        ("hosted_page_client", "text/javascript; charset=utf-8"),
    ],
)
def test_the_assets_are_static_files_of_their_type(directory: FakeDirectory, name: str, content_type: str) -> None:
    # When an asset is fetched
    answer = hosted.lambda_handler(_event(name), _context())
    headers = _headers(answer)

    # Then it is the file of the function's folder, in its type, cacheable for a while, read without the apps
    served = answer["body"]
    path = _event(name)["path"].rsplit("/", 1)[1]
    assert served == (ROOT / "functions" / "hosted_page" / "static" / path).read_text(encoding="utf-8")
    assert headers["Content-Type"] == content_type
    assert headers["Cache-Control"] == "public, max-age=300"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert directory.reads == 0


def test_the_served_browser_client_is_the_built_one() -> None:
    # The function ships its own copy (its CodeUri is its folder): it must be the committed build
    served = ROOT / "functions" / "hosted_page" / "static" / "sms-otp.js"
    built = ROOT / "client" / "dist" / "sms-otp.js"
    assert served.read_bytes() == built.read_bytes(), "copy client/dist/sms-otp.js to functions/hosted_page/static/"


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "en"),
        ("", "en"),
        ("fr-CH, fr;q=0.9, en;q=0.8", "fr"),
        ("pt-BR", "pt"),
        ("DE", "de"),
        ("ja, es;q=0.5", "es"),
        ("en;q=0.3, es;q=0.7", "es"),
        ("es;q=0, de;q=0.1", "de"),
        ("*", "en"),
        ("ja, zh", "en"),
        ("fr;q=abc, de", "de"),
        ("es;q=2", "en"),
        ("en, fr", "en"),
    ],
)
def test_the_language_is_the_best_shipped_one_accept_language_names(header: str | None, locale: str) -> None:
    assert choose_locale(header) == locale


def test_every_locale_has_every_string() -> None:
    assert set(CATALOGUES) == {"en", "es", "fr", "de", "pt"}
    keys = set(CATALOGUES[DEFAULT_LOCALE])
    for locale, strings in CATALOGUES.items():
        assert set(strings) == keys, locale
        # and the same placeholders as English, so the script fills each
        for key, text in strings.items():
            assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", CATALOGUES["en"][key])), key


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.strings: dict[str, str] = {}
        self._key: str | None = None
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        self._key = attributes.get("data-key")
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False
        self._key = None

    def handle_data(self, data: str) -> None:
        if self._key is not None:
            self.strings[self._key] = self.strings.get(self._key, "") + data
        if self._in_script and data.strip():
            self.inline_scripts += 1


def _parse(body: str) -> _Page:
    page = _Page()
    page.feed(body)
    return page


@pytest.mark.parametrize("locale", sorted(CATALOGUES))
def test_the_page_is_rendered_in_the_chosen_language(directory: FakeDirectory, locale: str) -> None:
    # When the page is asked for in a shipped language
    answer = hosted.lambda_handler(_event(**{"Accept-Language": f"{locale};q=0.9"}), _context())
    page = _parse(answer["body"])

    # Then it is in that language: the html lang, the header and every string of its catalogue
    assert ("html", {"lang": locale}) in page.elements
    assert _headers(answer)["Content-Language"] == locale
    assert "Accept-Language" in _headers(answer)["Vary"]
    assert page.strings == CATALOGUES[locale]


def test_the_page_has_the_contract_s_fields_and_no_inline_code(directory: FakeDirectory) -> None:
    page = _parse(hosted.lambda_handler(_event(), _context())["body"])
    by_id = {attributes.get("id"): (tag, attributes) for tag, attributes in page.elements if attributes.get("id")}

    # Then the phone field takes a full E.164 number and the code field one code, each in a form
    assert by_id["phone"][1]["type"] == "tel"
    assert by_id["phone"][1]["autocomplete"] == "tel"
    assert by_id["code"][1]["autocomplete"] == "one-time-code"
    assert by_id["code"][1]["inputmode"] == "numeric"
    assert by_id["phone-form"][0] == by_id["code-form"][0] == "form"
    assert by_id["status"][1]["aria-live"] == "polite"
    # And a labelled country picker helps with a national number: one option per region, with its calling code
    assert by_id["country"][0] == "select"
    options = [attributes for tag, attributes in page.elements if tag == "option"]
    assert {"value": "+1", "data-region": "US"} in options
    assert {"value": "+351", "data-region": "PT"} in options
    assert ("label", {"for": "country"}) in page.elements
    # And its only script and style are the stack's own files: nothing inline, nothing third-party
    scripts = [attributes for tag, attributes in page.elements if tag == "script"]
    assert scripts == [{"type": "module", "src": "./challenge.js"}]
    assert page.inline_scripts == 0
    assert not any(tag == "style" or "style" in attributes for tag, attributes in page.elements)
    links = [attributes["href"] for tag, attributes in page.elements if tag == "link"]
    assert links == ["./challenge.css"]
    assert not any("on" + name in attributes for _, attributes in page.elements for name in ("click", "load"))


def test_every_string_is_escaped(monkeypatch: pytest.MonkeyPatch, directory: FakeDirectory) -> None:
    # Given a catalogue whose strings are markup
    hostile = '<script>alert("x")</script>&"\''
    monkeypatch.setitem(hosted.CATALOGUES, "en", dict.fromkeys(CATALOGUES["en"], hostile))

    # When the page is rendered
    body = hosted.lambda_handler(_event(**{"Accept-Language": "en"}), _context())["body"]
    page = _parse(body)

    # Then each string reads back as the text it is, and none became an element
    assert "<script>alert" not in body
    assert html.escape(hostile, quote=True) in body
    assert set(page.strings.values()) == {hostile}
    assert [tag for tag, _ in page.elements].count("script") == 1


def test_the_script_and_style_use_nothing_from_elsewhere() -> None:
    static = ROOT / "functions" / "hosted_page" / "static"
    script = (static / "challenge.js").read_text(encoding="utf-8")
    # The one import is the stack's browser client, served beside the page
    assert re.findall(r'from "([^"]+)"', script) == ["./sms-otp.js"]
    # It never posts to any origin, and takes the token out of the address bar
    posts = re.findall(r"\.postMessage\(([^;]*)\);", script)
    assert posts and all(post.endswith(", origin)") or post.endswith(", origin") for post in posts), posts
    assert "history.replaceState" in script
    assert "sessionStorage.removeItem" in script
    for text in (script, (static / "challenge.css").read_text(encoding="utf-8")):
        assert "http://" not in text and "https://" not in text and "@import" not in text
    assert "prefers-color-scheme: dark" in (static / "challenge.css").read_text(encoding="utf-8")
    assert ":focus-visible" in (static / "challenge.css").read_text(encoding="utf-8")


def test_the_script_writes_text_only_and_keeps_the_token_out_of_queries() -> None:
    script = (ROOT / "functions" / "hosted_page" / "static" / "challenge.js").read_text(encoding="utf-8")
    # No markup from strings: every text goes in through textContent, and no code is made of a string
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert re.search(r"set(Timeout|Interval)\(\s*[\"'`]", script) is None
    assert ".textContent = " in script
    # The token is read from the fragment only and never goes into a URL's query
    assert "location.search" not in script.replace("location.pathname + location.search", "")
    assert not re.search(r"[?&]token=", script)
    assert "location.hash" in script
    # And a new link opened in the same tab (the fragment changes, no load) is taken like the first
    assert re.search(r'addEventListener\("hashchange"', script)


def test_the_script_knows_every_failure_reason_a_verify_answers() -> None:
    from typing import get_args

    from otp_core.models import ClientVerifyResult

    script = (ROOT / "functions" / "hosted_page" / "static" / "challenge.js").read_text(encoding="utf-8")
    annotation = ClientVerifyResult.model_fields["failure_reason"].annotation
    reasons = {value for member in get_args(annotation) for value in get_args(member)}
    # The page tells exhausted, wrong and expired apart from these two (an expired code, the last allowed wrong
    # code and a wrong one all answer CODE_INVALID_OR_EXPIRED; attemptsRemaining and expiresAt tell which): a new
    # reason needs a look at its failureKey
    assert reasons == {"CODE_INVALID_OR_EXPIRED", "MAX_ATTEMPTS_EXCEEDED"}
    assert '"MAX_ATTEMPTS_EXCEEDED"' in script
    # And a refused send's Retry-After (the browser client's retryAfter) holds the send buttons back
    assert "error.retryAfter" in script


def test_the_success_token_names_the_app_s_origins_for_the_hand_off(make_world: Any) -> None:
    import jwt

    from otp_core.models import TrackRequest
    from tests.unit.conftest import Client

    def success_claims(world: Any) -> dict[str, Any]:
        client = Client(world)
        tracked = client.track(TrackRequest.model_validate({"userId": "u-9", "action": "signIn"}))
        claims = client.authenticate(f"Bearer {tracked.token}")
        client.client_enroll(claims, "+14155552671")
        verified = client.client_verify(claims, world.sender.last_code())
        assert verified.token is not None
        decoded: dict[str, Any] = jwt.decode(verified.token, options={"verify_signature": False})
        return decoded

    # Given an app with allowed origins, the success token lists them for the page's postMessage
    origins = success_claims(make_world(allowed_origins="https://shop.example,http://localhost:8080"))["ori"]
    assert origins == ["https://shop.example", "http://localhost:8080"]
    # And an app without any gets no claim (the page posts to no one)
    assert "ori" not in success_claims(make_world())


# ------------------------------------------------------------------------------------- /v1/track's url


@pytest.mark.parametrize(("state", "has_url"), [("ALLOW", True), ("CHALLENGE_REQUIRED", True), ("BLOCK", False)])
def test_track_answers_the_hosted_page_url_unless_blocked(state: str, has_url: bool) -> None:
    from otp_core.mfa import Tracked
    from otp_core.replies import track_result

    # When a track's answer is shaped with the API's base URL
    answer = track_result(Tracked(state, "a.b.c", False), "https://api.example.com/api").to_json()

    # Then it links the hosted page with the client token in the fragment (never the query), unless blocked
    if has_url:
        assert answer["url"] == "https://api.example.com/api/v1/hosted/challenge#token=a.b.c"
    else:
        assert "url" not in answer
    # And without a base there is no url
    assert "url" not in track_result(Tracked(state, "a.b.c", False), None).to_json()


def _router_for(context: dict[str, Any]) -> Any:
    from otp_core.http import Event, make_resolver

    router = make_resolver()
    router._event = Event({"requestContext": context})
    return router


@pytest.mark.parametrize(
    ("configured", "context", "expected"),
    [
        ("https://otp.example.com/", {"domainName": "x.execute-api.aws", "stage": "api"}, "https://otp.example.com"),
        (
            "",
            {"domainName": "a1b2.execute-api.us-east-1.amazonaws.com", "stage": "api"},
            "https://a1b2.execute-api.us-east-1.amazonaws.com/api",
        ),
        (
            "",
            {"domainName": "a1b2.execute-api.us-east-1.amazonaws.com", "stage": "$default"},
            "https://a1b2.execute-api.us-east-1.amazonaws.com",
        ),
        ("", {"domainName": "evil.example/x?", "stage": "api"}, None),
        ("", {"domainName": "a1b2.example", "stage": "a/b"}, None),
        ("", {}, None),
    ],
)
def test_the_base_url_is_the_configured_one_else_the_requests_stage_url(
    configured: str, context: dict[str, Any], expected: str | None
) -> None:
    from otp_core.http import public_base_url

    assert public_base_url(_router_for(context), configured) == expected


def test_the_public_base_url_setting_takes_a_url_without_query_or_fragment() -> None:
    from pydantic import ValidationError

    assert Settings(public_base_url="https://otp.example.com/base").public_base_url == "https://otp.example.com/base"
    for refused in ("otp.example.com", "https://otp.example.com/?a=1", "https://otp.example.com/#x", "javascript:x"):
        with pytest.raises(ValidationError):
            Settings(public_base_url=refused)
