"""The Authsignal facade driven by the real Python `authsignal` SDK against the local stack: the README's migration
story (change `api_url`), track, the client SMS routes with the client token, validate, users and
authenticators, and the errors the SDK raises; every rule of the native API still holds behind it."""

from __future__ import annotations

import base64
import re
import time
import uuid
from typing import Any

import pytest

from local import REPO_ROOT
from tests.e2e.conftest import Api
from tests.e2e.test_apps import new_app  # noqa: F401 - the fixture: apps made for a test, deleted after it

pytestmark = pytest.mark.e2e

authsignal = pytest.importorskip("authsignal")
from authsignal import AuthsignalClient  # noqa: E402
from authsignal.client import ApiException  # noqa: E402

README = REPO_ROOT / "README.md"


def sdk(api: Api, key: str | None = None) -> Any:
    """What a migrating app changes: `api_url` points at the stack's facade; the secret is an app's API key."""
    return AuthsignalClient(api_secret_key=key or api.api_key, api_url=f"{api.url}/authsignal/v1")


def client_call(api: Api, path: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A call of the web and mobile SDKs' client routes: the client token as Bearer."""
    reply = api.call("POST", f"/authsignal/v1{path}", body, auth=f"Bearer {token}")
    assert reply.headers.get("Content-Type") == "application/json"
    found: dict[str, Any] = reply.body
    return reply.status, found


def newest_code(api: Api, phone: str) -> str:
    deadline = time.monotonic() + 10
    while not api.outbox(phone) and time.monotonic() < deadline:
        time.sleep(0.1)
    match = re.search(r"\b(\d{4,10})\b", api.outbox(phone)[-1])
    assert match is not None
    return match.group(1)


def readme_python_block() -> str:
    """The README's Python lines of "Drop-in for Authsignal"."""
    section = README.read_text(encoding="utf-8").split("## Drop-in for Authsignal", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readmes_python_lines_run_as_printed(api: Api, phone: str) -> None:
    # Given the README's lines with their two constants set to this stack and its key
    block = readme_python_block()
    for name, value in {"API_KEY": api.api_key, "API_URL": api.url}.items():
        block, replaced = re.subn(rf'^{name} = "[^"\n]*"', f"{name} = {value!r}", block, flags=re.MULTILINE)
        assert replaced == 1, name

    # When they run
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md (Drop-in for Authsignal)", "exec"), namespace)  # noqa: S102 - the README's own code

    # Then the client they made talks to the stack's facade with the app's key
    client = namespace["authsignal"]
    user = f"e2e-{uuid.uuid4()}"
    client.enroll_verified_authenticator(user_id=user, attributes={"verificationMethod": "SMS", "phoneNumber": phone})
    assert client.get_user(user_id=user)["is_enrolled"] is True


def test_a_new_user_enrolls_by_sms_and_the_server_validates_the_result(api: Api, phone: str) -> None:
    client = sdk(api)
    user = f"e2e-{uuid.uuid4()}"

    # Given a track for a user without an SMS authenticator
    tracked = client.track(user_id=user, action="signIn", attributes={"ipAddress": "203.0.113.9"})
    assert tracked["state"] in ("ALLOW", "CHALLENGE_REQUIRED")
    assert tracked["is_enrolled"] is False
    token = tracked["token"]

    # When the browser enrolls a number and verifies the code it received (the client routes)
    status, enrolled = client_call(api, "/client/user-authenticators/sms", token, {"phoneNumber": phone})
    assert status == 200, enrolled
    status, verified = client_call(api, "/client/verify/sms", token, {"verificationCode": newest_code(api, phone)})
    assert status == 200, verified
    assert verified["isVerified"] is True

    # Then the server validates the result once, and the user now has the SMS authenticator
    valid = client.validate_challenge({"token": verified["accessToken"]})
    assert valid["is_valid"] is True and valid["user_id"] == user
    assert client.validate_challenge({"token": verified["accessToken"]})["is_valid"] is False
    (authenticator,) = client.get_authenticators(user_id=user)
    assert authenticator["verification_method"] == "SMS"
    assert client.get_user(user_id=user)["is_enrolled"] is True


def test_a_wrong_code_counts_and_the_right_one_then_verifies_once(api: Api, phone: str) -> None:
    client = sdk(api)
    user = f"e2e-{uuid.uuid4()}"
    token = client.track(user_id=user, action="signIn")["token"]
    client_call(api, "/client/user-authenticators/sms", token, {"phoneNumber": phone})
    code = newest_code(api, phone)
    wrong = str((int(code) + 1) % 10 ** len(code)).zfill(len(code))

    status, refused = client_call(api, "/client/verify/sms", token, {"verificationCode": wrong})
    assert status == 200 and refused["isVerified"] is False
    status, verified = client_call(api, "/client/verify/sms", token, {"verificationCode": code})
    assert status == 200 and verified["isVerified"] is True
    # Single use: the same code again verifies nothing
    status, again = client_call(api, "/client/verify/sms", token, {"verificationCode": code})
    assert again.get("isVerified") is not True


def test_an_enrolled_user_is_challenged_and_the_number_is_masked(api: Api, phone: str) -> None:
    client = sdk(api)
    user = f"e2e-{uuid.uuid4()}"
    enrolled = client.enroll_verified_authenticator(
        user_id=user, attributes={"verificationMethod": "SMS", "phoneNumber": phone}
    )
    authenticator = enrolled["authenticator"]
    assert phone not in str(enrolled)  # only the last four digits, as natively
    tracked = client.track(user_id=user, action="signIn")
    assert tracked["state"] == "CHALLENGE_REQUIRED" and tracked["is_enrolled"] is True

    status, challenged = client_call(api, "/client/challenge/sms", tracked["token"], {})
    assert status == 200 and challenged["challengeId"]
    status, verified = client_call(
        api, "/client/verify/sms", tracked["token"], {"verificationCode": newest_code(api, phone)}
    )
    assert verified["isVerified"] is True
    action = client.get_action(user_id=user, action="signIn", idempotency_key=tracked["idempotency_key"])
    assert action["state"] == "CHALLENGE_SUCCEEDED"

    # And deleting the authenticator leaves the user unenrolled
    client.delete_authenticator(user_id=user, user_authenticator_id=authenticator["user_authenticator_id"])
    assert client.get_authenticators(user_id=user) == []


def test_the_errors_the_sdk_raises(api: Api, new_app: Any, phone: str) -> None:  # noqa: F811
    user = f"e2e-{uuid.uuid4()}"
    # A key that is no app's, and an app's key used for another app's data, are refused or see nothing
    with pytest.raises(ApiException) as refused:
        sdk(api, "sk_not-a-key").get_user(user_id=user)
    assert refused.value.status_code == 401
    sdk(api).enroll_verified_authenticator(user_id=user, attributes={"verificationMethod": "SMS", "phoneNumber": phone})
    _, other_key = new_app()
    assert sdk(api, other_key).get_authenticators(user_id=user) == []

    # A factor this service does not have is a clear 400
    with pytest.raises(ApiException) as passkey:
        sdk(api).enroll_verified_authenticator(user_id=user, attributes={"verificationMethod": "PASSKEY"})
    assert passkey.value.status_code == 400

    # A client token that is not valid answers the browser SDK's expired_token
    status, expired = client_call(api, "/client/challenge/sms", "not-a-token", {})
    assert status == 401 and expired["errorCode"] == "expired_token"


def test_basic_auth_is_the_key_as_user_name_with_an_empty_password(api: Api) -> None:
    header = "Basic " + base64.b64encode(f"{api.api_key}:".encode()).decode()
    ok = api.call("GET", f"/authsignal/v1/users/e2e-{uuid.uuid4()}", auth=header)
    assert ok.status == 200 and ok.headers.get("Content-Type") == "application/json"
    with_password = "Basic " + base64.b64encode(f"{api.api_key}:secret".encode()).decode()
    refused = api.call("GET", f"/authsignal/v1/users/e2e-{uuid.uuid4()}", auth=with_password)
    assert refused.status == 401
    assert set(refused.body) == {"error", "errorCode", "errorDescription"}
