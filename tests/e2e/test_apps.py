"""Apps over HTTP: every admin route of the contract's "Apps" and each of its errors, keys that rotate and are
revoked within 60 seconds, per-app policy and templates in the outbox, test numbers, and two apps that share
nothing."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Api, Reply

pytestmark = pytest.mark.e2e

APPS = "/v1/admin/apps"


def admin(api: Api, method: str, path: str, body: object = None) -> Reply:
    if not api.admin_key:
        pytest.skip("ADMIN_KEY is not set for the deployed stack")
    return api.call(method, path, body, auth=f"Bearer {api.admin_key}")


def with_key(api: Api, key: str, method: str, path: str, body: object = None) -> Reply:
    return api.call(method, path, body, auth=f"Bearer {key}")


def _id(label: str) -> str:
    return f"e2e-{label}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def new_app(api: Api) -> Iterator[Callable[..., tuple[str, str]]]:
    """Make an app with one key: (app ID, API key); the apps are deleted after the test."""
    made: list[str] = []

    def make(settings: dict[str, Any] | None = None, label: str = "app") -> tuple[str, str]:
        app_id = _id(label)
        created = admin(api, "POST", APPS, {"appId": app_id, "name": f"E2E {label}", "settings": settings or {}})
        assert created.status == 201, created.body
        made.append(app_id)
        key = admin(api, "POST", f"{APPS}/{app_id}/keys", {"description": "e2e"})
        assert key.status == 201, key.body
        return app_id, key.body["apiKey"]

    yield make
    for app_id in made:
        admin(api, "DELETE", f"{APPS}/{app_id}")


def _problem(reply: Reply, status: int, code: str) -> dict[str, Any]:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.body["code"] == code, reply.body
    body: dict[str, Any] = reply.body
    return body


def _fields(reply: Reply) -> set[str]:
    return {error["field"] for error in reply.body.get("errors", [])}


# ------------------------------------------------------------------------------------------ the routes


def test_an_app_is_created_read_listed_changed_and_deleted(api: Api) -> None:
    app_id = _id("life")
    created = admin(api, "POST", APPS, {"appId": app_id, "name": "Life", "settings": {"codeLength": 8}})
    assert created.status == 201, created.body
    record = created.body
    assert set(record) == {"appId", "name", "settings", "createdAt", "twilioServiceSid", "twilioAccountSid"}
    assert record["appId"] == app_id and record["name"] == "Life"
    assert record["settings"]["codeLength"] == 8 and record["settings"]["tokenAudience"]
    assert re.fullmatch(r"VA[0-9a-f]{32}", record["twilioServiceSid"])
    assert record["twilioAccountSid"] == "AC" + record["twilioServiceSid"][2:]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["createdAt"])

    assert admin(api, "GET", f"{APPS}/{app_id}").body == record
    listed = admin(api, "GET", APPS)
    assert listed.status == 200
    ids = [app["appId"] for app in listed.body["apps"]]
    assert app_id in ids and "default" in ids

    patched = admin(
        api, "PATCH", f"{APPS}/{app_id}", {"name": "Renamed", "settings": {"codeLength": None, "maxAttempts": 3}}
    )
    assert patched.status == 200, patched.body
    assert patched.body["name"] == "Renamed"
    assert "codeLength" not in patched.body["settings"] and patched.body["settings"]["maxAttempts"] == 3
    assert admin(api, "GET", f"{APPS}/{app_id}").body == patched.body

    deleted = admin(api, "DELETE", f"{APPS}/{app_id}")
    assert deleted.status == 204 and deleted.body is None
    _problem(admin(api, "GET", f"{APPS}/{app_id}"), 404, "NOT_FOUND")
    assert app_id not in [app["appId"] for app in admin(api, "GET", APPS).body["apps"]]
    # A deleted app's ID is never reused
    _problem(admin(api, "POST", APPS, {"appId": app_id, "name": "Again"}), 409, "CONFLICT")


def test_an_app_id_is_generated_when_absent(api: Api) -> None:
    created = admin(api, "POST", APPS, {"name": "Generated"})
    assert created.status == 201
    assert re.fullmatch(r"[a-z0-9-]{1,64}", created.body["appId"])
    admin(api, "DELETE", f"{APPS}/{created.body['appId']}")


def test_keys_are_shown_once_listed_without_secrets_and_capped_at_five(api: Api, new_app) -> None:
    app_id, first = new_app()
    listed = admin(api, "GET", f"{APPS}/{app_id}/keys")
    assert listed.status == 200
    [key] = listed.body["keys"]
    assert set(key) <= {"keyId", "description", "createdAt", "lastUsedAt"} and key["description"] == "e2e"
    assert first not in str(listed.body)
    for _ in range(4):
        made = admin(api, "POST", f"{APPS}/{app_id}/keys", {})
        assert made.status == 201 and set(made.body) == {"keyId", "apiKey", "createdAt"}
    _problem(admin(api, "POST", f"{APPS}/{app_id}/keys", {}), 409, "CONFLICT")
    assert len(admin(api, "GET", f"{APPS}/{app_id}/keys").body["keys"]) == 5


def test_a_key_records_its_last_use(api: Api, new_app, phone: str) -> None:
    app_id, key = new_app()
    assert with_key(api, key, "POST", "/v1/challenges", {"phoneNumber": phone, "action": "signIn"}).status == 201
    [listed] = admin(api, "GET", f"{APPS}/{app_id}/keys").body["keys"]
    assert "lastUsedAt" in listed


def test_the_stack_key_of_default_is_listed(api: Api) -> None:
    keys = admin(api, "GET", f"{APPS}/default/keys").body["keys"]
    assert any(key["description"] == "generated by the stack" for key in keys)
    assert api.api_key not in str(keys)


# ------------------------------------------------------------------------------------------ the errors


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"codeLength": 11}, "settings.codeLength"),
        ({"codeLength": "6"}, "settings.codeLength"),
        ({"lockoutThreshold": 3}, "settings.lockoutThreshold"),
        ({"templates": {"en": "no placeholder"}}, "settings.templates.en"),
        ({"smsProviders": ["vonage"]}, "settings.smsProviders"),
        ({"redirectUrls": ["http://example.com/"]}, "settings.redirectUrls"),
        ({"testNumbers": [{"phoneNumber": "+16505550100", "code": "12"}]}, "settings.testNumbers.0.code"),
    ],
)
def test_a_bad_setting_is_a_400_naming_it(api: Api, settings: dict[str, Any], field: str) -> None:
    reply = admin(api, "POST", APPS, {"appId": _id("bad"), "name": "Bad", "settings": settings})
    _problem(reply, 400, "INVALID_REQUEST")
    assert field in _fields(reply), reply.body


@pytest.mark.parametrize(
    "body",
    [{"appId": "Upper", "name": "x"}, {"appId": "a" * 65, "name": "x"}, {"name": ""}, {"name": "x", "extra": 1}, {}],
)
def test_a_bad_app_body_is_a_400(api: Api, body: dict[str, Any]) -> None:
    _problem(admin(api, "POST", APPS, body), 400, "INVALID_REQUEST")


def test_unknown_apps_and_keys_are_404(api: Api, new_app) -> None:
    app_id, _ = new_app()
    _problem(admin(api, "GET", f"{APPS}/{_id('nobody')}"), 404, "NOT_FOUND")
    _problem(admin(api, "PATCH", f"{APPS}/{_id('nobody')}", {"name": "x"}), 404, "NOT_FOUND")
    _problem(admin(api, "DELETE", f"{APPS}/{_id('nobody')}"), 404, "NOT_FOUND")
    _problem(admin(api, "GET", f"{APPS}/{_id('nobody')}/keys"), 404, "NOT_FOUND")
    _problem(admin(api, "POST", f"{APPS}/{_id('nobody')}/keys", {}), 404, "NOT_FOUND")
    _problem(admin(api, "DELETE", f"{APPS}/{app_id}/keys/key_0000000000000000"), 404, "NOT_FOUND")
    _problem(admin(api, "DELETE", f"{APPS}/{app_id}/keys/not-a-key"), 404, "NOT_FOUND")


def test_conflicts(api: Api, new_app) -> None:
    app_id, _ = new_app()
    _problem(admin(api, "POST", APPS, {"appId": app_id, "name": "Twin"}), 409, "CONFLICT")
    _problem(admin(api, "DELETE", f"{APPS}/default"), 409, "CONFLICT")
    audience = admin(api, "GET", f"{APPS}/{app_id}").body["settings"]["tokenAudience"]
    taken = admin(api, "POST", APPS, {"appId": _id("aud"), "name": "Aud", "settings": {"tokenAudience": audience}})
    _problem(taken, 409, "CONFLICT")


def test_credentials_of_the_admin_routes(api: Api, new_app) -> None:
    app_id, key = new_app()
    for method, path in [("GET", APPS), ("POST", APPS), ("GET", f"{APPS}/{app_id}"), ("DELETE", f"{APPS}/{app_id}")]:
        _problem(with_key(api, key, method, path, {"name": "x"} if method == "POST" else None), 403, "FORBIDDEN")
        _problem(api.call(method, path, auth=None), 401, "UNAUTHORIZED")
    # The app is still there: the forbidden DELETE did nothing
    assert admin(api, "GET", f"{APPS}/{app_id}").status == 200


# ------------------------------------------------------------------------- keys revoked and apps deleted


def _until_refused(api: Api, key: str, deadline: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        reply = with_key(api, key, "GET", f"/v1/users/{uuid.uuid4()}/authenticators")
        if reply.status == 401:
            return time.monotonic() - started
        assert reply.status == 200, reply.body
        time.sleep(2)
    pytest.fail(f"the key still worked after {deadline} seconds")


def test_a_revoked_key_is_refused_within_60_seconds_while_the_other_works(api: Api, new_app) -> None:
    app_id, old = new_app()
    new = admin(api, "POST", f"{APPS}/{app_id}/keys", {"description": "new"}).body
    path = f"/v1/users/{uuid.uuid4()}/authenticators"
    assert with_key(api, old, "GET", path).status == 200
    assert with_key(api, new["apiKey"], "GET", path).status == 200
    old_id = next(
        k["keyId"] for k in admin(api, "GET", f"{APPS}/{app_id}/keys").body["keys"] if k["keyId"] != new["keyId"]
    )
    assert admin(api, "DELETE", f"{APPS}/{app_id}/keys/{old_id}").status == 204
    assert _until_refused(api, old, 60) <= 60
    assert with_key(api, new["apiKey"], "GET", path).status == 200


def test_a_deleted_app_s_keys_are_refused(api: Api, new_app) -> None:
    app_id, key = new_app()
    assert with_key(api, key, "GET", f"/v1/users/{uuid.uuid4()}/authenticators").status == 200
    assert admin(api, "DELETE", f"{APPS}/{app_id}").status == 204
    assert _until_refused(api, key, 60) <= 60


# --------------------------------------------------------------------------------- per-app settings in use


def test_an_app_s_code_length_and_template_reach_the_outbox(api: Api, new_app, phone: str) -> None:
    app_id, key = new_app({"codeLength": 8, "appName": "Tienda", "templates": {"es": "{app}: tu codigo es {otp}"}})
    sent = with_key(api, key, "POST", "/v1/challenges", {"phoneNumber": phone, "action": "signIn", "locale": "es-MX"})
    assert sent.status == 201, sent.body
    [message] = api.messages(phone)
    assert re.fullmatch(r"Tienda: tu codigo es [0-9]{8}", message["body"]), message
    code = message["body"].rsplit(" ", 1)[1]
    # The default app's key does not know this challenge
    _problem(api.call("GET", f"/v1/challenges/{sent.body['challengeId']}"), 404, "NOT_FOUND")
    verified = with_key(api, key, "POST", f"/v1/challenges/{sent.body['challengeId']}/verify", {"code": code})
    assert verified.body["isVerified"] is True
    # A settings change applies at once on the local stack
    assert admin(api, "PATCH", f"{APPS}/{app_id}", {"settings": {"codeLength": 4}}).status == 200
    with_key(api, key, "POST", "/v1/challenges", {"phoneNumber": phone, "action": "signIn", "locale": "es"})
    assert re.fullmatch(r"Tienda: tu codigo es [0-9]{4}", api.messages(phone)[-1]["body"])


def test_a_test_number_shows_as_provider_test_and_verifies_its_fixed_code(api: Api, new_app, phone: str) -> None:
    _, key = new_app({"testNumbers": [{"phoneNumber": phone, "code": "135790"}]}, label="review")
    sent = with_key(api, key, "POST", "/v1/challenges", {"phoneNumber": phone, "action": "signIn"})
    assert sent.status == 201, sent.body
    [message] = api.messages(phone)
    assert message["provider"] == "test" and "135790" in message["body"]
    verified = with_key(api, key, "POST", f"/v1/challenges/{sent.body['challengeId']}/verify", {"code": "135790"})
    assert verified.body["isVerified"] is True and verified.body["token"]
    enroll = with_key(
        api, key, "POST", "/v1/users/reviewer/authenticators", {"verificationMethod": "SMS", "phoneNumber": phone}
    )
    _problem(enroll, 400, "INVALID_PHONE_NUMBER")
    # The same number is no test number of the default app: its send goes to a provider
    assert api.call("POST", "/v1/challenges", {"phoneNumber": phone, "action": "signIn"}).status == 201
    assert api.messages(phone)[-1]["provider"] != "test"


def test_tokens_of_one_app_never_validate_under_another(api: Api, new_app, phone: str) -> None:
    _, key = new_app()
    sent = with_key(api, key, "POST", "/v1/challenges", {"phoneNumber": phone, "action": "signIn"}).body
    code = api.code(phone)
    token = with_key(api, key, "POST", f"/v1/challenges/{sent['challengeId']}/verify", {"code": code}).body["token"]
    other = api.call("POST", "/v1/validate", {"token": token})
    assert other.body == {"isValid": False, "failureReason": "TOKEN_INVALID_OR_EXPIRED"}
    assert with_key(api, key, "POST", "/v1/validate", {"token": token}).body["isValid"] is True


def test_an_app_s_autofill_lines_reach_the_outbox(api: Api, new_app, phone: str) -> None:
    _, key = new_app({"appName": "Shop", "webOtpDomain": "shop.example", "androidAppHash": "FA+9qCX9VSu"})
    sent = with_key(api, key, "POST", "/v1/challenges", {"phoneNumber": phone, "action": "signIn"})
    assert sent.status == 201, sent.body
    body = api.messages(phone)[-1]["body"]
    code = body.removeprefix("<#> ").split()[0]
    assert body.startswith("<#> ") and body.endswith(f"\nFA+9qCX9VSu\n@shop.example #{code}")
    verified = with_key(api, key, "POST", f"/v1/challenges/{sent.body['challengeId']}/verify", {"code": code})
    assert verified.body["isVerified"] is True


def test_signed_in_verification_acts_for_the_app_whose_identity_provider_issued_the_token(
    api: Api, new_app, idp, new_phone
) -> None:
    # Given an app whose users sign in with the same identity provider, for an audience of their own
    app_id, key = new_app(
        {
            "idpIssuer": idp.issuer,
            "idpAudience": f"api-{uuid.uuid4().hex[:6]}",
            "idpJwksUrl": api.url + "/_local/idp/jwks.json",
        }
    )
    audience = admin(api, "GET", f"{APPS}/{app_id}").body["settings"]["idpAudience"]
    phone, other = new_phone(), new_phone()
    user = f"e2e-{uuid.uuid4()}"
    app_token, default_token = idp.token(user, audience=audience), idp.token(user)

    # When the user verifies a number with the app's token
    sent = api.with_token("POST", "/v1/verification/sms/send", app_token, {"phoneNumber": phone})
    assert sent.status == 202, sent.body
    code = api.code(phone)
    # The same user of the default app has no pending challenge for that number
    crossed = api.with_token(
        "POST", "/v1/verification/sms/validate", default_token, {"phoneNumber": phone, "passcode": code}
    )
    assert crossed.body["verified"] is False
    validated = api.with_token(
        "POST", "/v1/verification/sms/validate", app_token, {"phoneNumber": phone, "passcode": code}
    )
    assert validated.body == {"verified": True, "enrolled": True}

    # Then the number is the user's authenticator in the app, and not in the default app
    path = f"/v1/users/{user}/authenticators"
    assert len(with_key(api, key, "GET", path).body["authenticators"]) == 1
    assert api.call("GET", path).body == {"authenticators": []}
    # A token for an audience no app has is refused
    stranger = api.with_token(
        "POST", "/v1/verification/sms/send", idp.token(user, audience="nobody"), {"phoneNumber": other}
    )
    assert stranger.status == 401


def test_a_track_redirect_url_off_the_app_s_list_is_a_400(api: Api, new_app) -> None:
    _, key = new_app({"redirectUrls": ["https://shop.example/done"]})
    track = {"userId": f"e2e-{uuid.uuid4()}", "action": "signIn"}
    on = with_key(api, key, "POST", "/v1/track", {**track, "attributes": {"redirectUrl": "https://shop.example/done"}})
    assert on.status == 200, on.body
    off = with_key(api, key, "POST", "/v1/track", {**track, "attributes": {"redirectUrl": "https://evil.example/"}})
    assert "attributes.redirectUrl" in _fields(_problem_reply(off))
    # The default app lists none: its tracks ignore the URL
    assert (
        api.call("POST", "/v1/track", {**track, "attributes": {"redirectUrl": "https://evil.example/"}}).status == 200
    )


def _problem_reply(reply: Reply) -> Reply:
    _problem(reply, 400, "INVALID_REQUEST")
    return reply
