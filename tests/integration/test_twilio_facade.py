"""The Twilio Verify facade's function on DynamoDB Local and moto, under its template policy: the events/ files
changed per test, HTTP Basic checked against real app keys, the core's pointer and cancel on the real table, and
every malformed request a 4xx in Twilio's shape, never a 500."""

from __future__ import annotations

import base64
import copy
import importlib
import json
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from local.gateway import LambdaContext
from otp_core import runtime
from otp_core.adapters.dynamodb import DynamoChallengeRepository, challenge_key
from otp_core.fraud import Block, Reason, parse_bucket
from otp_core.records import ChallengeState
from tests.integration.conftest import API_KEY, ROOT, Reply, invoke_function

ROUTES = {
    "create": "/twilio/v2/Services/{ServiceSid}/Verifications",
    "fetch": "/twilio/v2/Services/{ServiceSid}/Verifications/{Sid}",
    "update": "/twilio/v2/Services/{ServiceSid}/Verifications/{Sid}",
    "check": "/twilio/v2/Services/{ServiceSid}/VerificationCheck",
}


class App:
    """An app with one API key, and its Twilio SIDs as its record shows them."""

    def __init__(self, settings: dict[str, Any] | None = None, label: str = "tw") -> None:
        self.app_id = f"{label}-{uuid.uuid4().hex[:8]}"
        admin = runtime.app_admin()
        record = admin.create(self.app_id, "Twilio app", settings)
        self.service_sid, self.account_sid = record.twilio_service_sid, record.twilio_account_sid
        self.key = admin.create_key(self.app_id, "twilio").secret

    @property
    def basic(self) -> str:
        return basic(self.account_sid, self.key)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def twilio(
    route: str,
    app: App,
    form: dict[str, str] | None = None,
    *,
    sid: str | None = None,
    service_sid: str | None = None,
    authorization: str | None = None,
    raw_body: str | None = None,
    base64_body: bool = False,
    content_type: str | None = "application/x-www-form-urlencoded",
) -> Reply:
    """Run the function with ``events/twilio_verify_<route>.json``, as API Gateway would for this request."""
    event = copy.deepcopy(json.loads((ROOT / "events" / f"twilio_verify_{route}.json").read_text()))
    parameters = {"ServiceSid": service_sid or app.service_sid, **({"Sid": sid} if sid is not None else {})}
    if route in ("fetch", "update") and sid is None:
        parameters["Sid"] = event["pathParameters"]["Sid"]
    event["pathParameters"] = parameters
    path = ROUTES[route]
    for name, value in parameters.items():
        path = path.replace("{" + name + "}", value)
    event["path"] = path
    headers = {key: value for key, value in event["headers"].items() if key != "Content-Type"}
    headers["Authorization"] = authorization if authorization is not None else app.basic
    body = raw_body if raw_body is not None else (urlencode(form) if form is not None else None)
    if body is not None and content_type is not None:
        headers["Content-Type"] = content_type
    if base64_body and body is not None:
        body = base64.b64encode(body.encode() if isinstance(body, str) else body).decode()
    event["headers"] = headers
    event["multiValueHeaders"] = {key: [value] for key, value in headers.items()}
    event["body"] = body
    event["isBase64Encoded"] = base64_body
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    module = importlib.import_module("functions.twilio_verify.app")
    context = LambdaContext(
        function_name="TwilioVerifyFunction",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:TwilioVerifyFunction",
        aws_request_id=str(uuid.uuid4()),
    )
    result = module.lambda_handler(event, context)
    headers_out = {key: values[0] for key, values in (result.get("multiValueHeaders") or {}).items()}
    return Reply(result["statusCode"], headers_out, json.loads(result["body"]) if result.get("body") else None)


def twilio_error(reply: Reply, status: int, code: int) -> None:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/json"
    assert set(reply.body) == {"code", "message", "more_info", "status"}, reply.body
    assert (reply.body["code"], reply.body["status"]) == (code, status), reply.body


def last_code(sms: Callable[[str], list[str]], phone: str) -> str:
    return re.findall(r"\b[0-9]{6}\b", sms(phone)[-1])[0]


@pytest.fixture
def app(stack: Any) -> App:
    return App({"resendCooldownSeconds": 0})


@pytest.fixture
def new_phone(stack: Any) -> Callable[[], str]:
    """Fresh numbers, from the same sequence as the ``phone`` fixture."""
    from tests.integration.conftest import _numbers

    return lambda: next(_numbers)


# ------------------------------------------------------------------------------------------- the story


def test_a_verification_is_sent_fetched_checked_and_gone(app: App, sms: Any, phone: str) -> None:
    created = twilio("create", app, {"To": phone, "Channel": "sms"})
    assert created.status == 201, created.body
    sid = created.body["sid"]
    assert created.headers["Content-Type"] == "application/json"
    assert created.headers["Cache-Control"] == "no-store"
    assert (created.body["service_sid"], created.body["account_sid"]) == (app.service_sid, app.account_sid)
    assert created.body["url"].endswith(f"/twilio/v2/Services/{app.service_sid}/Verifications/{sid}")
    assert len(sms(phone)) == 1
    code = last_code(sms, phone)

    fetched = twilio("fetch", app, sid=sid)
    wrong = twilio("check", app, {"To": phone, "Code": "000000" if code != "000000" else "111111"})
    approved = twilio("check", app, {"VerificationSid": sid, "Code": code})
    gone = twilio("fetch", app, sid=sid)

    assert (fetched.status, fetched.body["status"]) == (200, "pending")
    assert (wrong.status, wrong.body["status"], wrong.body["valid"]) == (200, "pending", False)
    assert (approved.status, approved.body["status"], approved.body["valid"]) == (200, "approved", True)
    twilio_error(gone, 404, 20404)
    twilio_error(twilio("check", app, {"VerificationSid": sid, "Code": code}), 404, 20404)


def test_create_again_sends_the_same_code_to_the_same_verification(app: App, sms: Any, phone: str) -> None:
    first = twilio("create", app, {"To": phone, "Channel": "sms"})
    again = twilio("create", app, {"To": phone, "Channel": "sms", "Locale": "fr"})

    assert again.status == 201 and again.body["sid"] == first.body["sid"]
    assert len(again.body["send_code_attempts"]) == 2
    codes = {re.findall(r"\b[0-9]{6}\b", body)[0] for body in sms(phone)}
    assert len(sms(phone)) == 2 and len(codes) == 1


def test_cancel_is_one_conditional_write_on_the_table(app: App, sms: Any, phone: str) -> None:
    sid = twilio("create", app, {"To": phone, "Channel": "sms"}).body["sid"]
    code = last_code(sms, phone)

    canceled = twilio("update", app, {"Status": "canceled"}, sid=sid)
    again = twilio("update", app, {"Status": "canceled"}, sid=sid)
    approved = twilio("update", app, {"Status": "approved"}, sid=sid)

    assert (canceled.status, canceled.body["status"]) == (200, "canceled")
    twilio_error(again, 404, 20404)
    twilio_error(approved, 400, 60200)
    twilio_error(twilio("check", app, {"To": phone, "Code": code}), 404, 20404)
    # The stored challenge is EXPIRED as of the cancel: no verify of the native API opens it again
    challenge_id = str(uuid.UUID(sid[2:]))
    item = runtime.client("dynamodb").get_item(
        TableName=runtime.settings().table_name, Key=challenge_key(challenge_id), ConsistentRead=True
    )["Item"]
    assert item["state"]["S"] == "EXPIRED" and "canceledAt" in item
    verify = invoke_function("verify_challenge", body={"code": code}, challenge_id=challenge_id, app=app.app_id)
    assert verify.body["isVerified"] is False


def test_the_dynamodb_cancel_takes_only_a_pending_challenge_of_its_own_app(
    app: App, sms: Any, new_phone: Callable[[], str]
) -> None:
    # Given a pending, a verified and an exhausted challenge (of an app allowing one attempt)
    one, two, three = new_phone(), new_phone(), new_phone()
    pending = twilio("create", app, {"To": one, "Channel": "sms"}).body["sid"]
    verified = twilio("create", app, {"To": two, "Channel": "sms"}).body["sid"]
    twilio("check", app, {"To": two, "Code": last_code(sms, two)})
    exhausted_app = App({"maxAttempts": 1})
    exhausted = twilio("create", exhausted_app, {"To": three, "Channel": "sms"}).body["sid"]
    wrong = "000000" if last_code(sms, three) != "000000" else "111111"
    twilio("check", exhausted_app, {"To": three, "Code": wrong})
    mine = DynamoChallengeRepository(runtime.client("dynamodb"), runtime.settings().table_name, app_id=app.app_id)
    other = DynamoChallengeRepository(runtime.client("dynamodb"), runtime.settings().table_name, app_id="default")
    now = runtime.clock().now()

    def challenge_id(sid: str) -> str:
        return str(uuid.UUID(sid[2:]))

    # Then another app's repository cancels nothing, and this app's only the pending one, once
    assert other.cancel(challenge_id(pending), now) is None
    cancelled = mine.cancel(challenge_id(pending), now)
    assert cancelled is not None and cancelled.state is ChallengeState.EXPIRED and cancelled.expires_at == now
    assert cancelled.phone_number == one
    assert mine.cancel(challenge_id(pending), now) is None
    assert mine.cancel(challenge_id(verified), now) is None
    assert mine.cancel(str(uuid.uuid4()), now) is None
    exhausted_repository = DynamoChallengeRepository(
        runtime.client("dynamodb"), runtime.settings().table_name, app_id=exhausted_app.app_id
    )
    assert exhausted_repository.cancel(challenge_id(exhausted), now) is None
    assert exhausted_repository.get(challenge_id(exhausted)).state_at(now) is ChallengeState.FAILED  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------- credentials


def test_every_wrong_credential_is_the_same_401(app: App, phone: str) -> None:
    other = App()
    form = {"To": phone, "Channel": "sms"}
    attempts = [
        basic(app.account_sid, "sk_not-a-key"),
        basic(app.account_sid, other.key),  # another app's key
        basic(other.account_sid, app.key),  # another app's account
        basic(app.account_sid, API_KEY),  # the default app's key
        basic(app.account_sid, runtime.secret(runtime.settings().admin_key_secret_id)),  # the admin key
        f"Bearer {app.key}",
        "",
    ]
    for authorization in attempts:
        reply = twilio("create", app, form, authorization=authorization)
        twilio_error(reply, 401, 20003)
        assert reply.body["message"] == "Authenticate"
    # And the right key with another app's Service SID in the path
    twilio_error(twilio("create", app, form, service_sid=other.service_sid), 401, 20003)


def test_a_deleted_apps_credentials_stop_working(app: App, phone: str) -> None:
    assert twilio("create", app, {"To": phone, "Channel": "sms"}).status == 201

    runtime.app_admin().delete(app.app_id)
    runtime.reset()

    twilio_error(twilio("create", app, {"To": phone, "Channel": "sms"}), 401, 20003)


def test_the_default_apps_stack_key_opens_its_service(stack: Any, phone: str) -> None:
    record = runtime.app_admin().get("default")
    default = App.__new__(App)
    default.app_id, default.key = "default", API_KEY
    default.service_sid, default.account_sid = record.twilio_service_sid, record.twilio_account_sid

    assert twilio("create", default, {"To": phone, "Channel": "sms"}).status == 201


def test_apps_share_no_verification(app: App, sms: Any, phone: str) -> None:
    other = App({"resendCooldownSeconds": 0})
    sid = twilio("create", app, {"To": phone, "Channel": "sms"}).body["sid"]
    code = last_code(sms, phone)

    # The other app sees neither the SID nor the number's pending verification
    twilio_error(twilio("fetch", other, sid=sid), 404, 20404)
    twilio_error(twilio("check", other, {"VerificationSid": sid, "Code": code}), 404, 20404)
    twilio_error(twilio("check", other, {"To": phone, "Code": code}), 404, 20404)
    twilio_error(twilio("update", other, {"Status": "canceled"}, sid=sid), 404, 20404)
    # And its own create to the number is a verification of its own
    assert twilio("create", other, {"To": phone, "Channel": "sms"}).body["sid"] != sid
    assert twilio("check", app, {"VerificationSid": sid, "Code": code}).body["status"] == "approved"


# ------------------------------------------------------------------------------------------- rules


def test_a_test_number_reaches_no_provider(stack: Any, sms: Any, phone: str) -> None:
    app = App({"testNumbers": [{"phoneNumber": phone, "code": "135790"}]})

    assert twilio("create", app, {"To": phone, "Channel": "sms"}).status == 201
    approved = twilio("check", app, {"To": phone, "Code": "135790"})

    assert sms(phone) == []
    assert approved.body["status"] == "approved"


def test_a_fraud_guard_block_refuses_before_any_send(app: App, sms: Any, phone: str) -> None:
    now = runtime.clock().now()
    runtime.fraud_store().put_block(Block(app.app_id, parse_bucket(f"prefix:{phone[1:-3]}"), Reason.MANUAL, now, None))
    runtime.reset()

    twilio_error(twilio("create", app, {"To": phone, "Channel": "sms"}), 403, 60410)
    assert sms(phone) == []


def test_the_per_number_cap_holds_across_cancels(app: App, sms: Any, phone: str) -> None:
    for _ in range(5):
        sid = twilio("create", app, {"To": phone, "Channel": "sms"}).body["sid"]
        assert twilio("update", app, {"Status": "canceled"}, sid=sid).status == 200

    refused = twilio("create", app, {"To": phone, "Channel": "sms"})

    twilio_error(refused, 429, 60203)
    assert int(refused.headers["Retry-After"]) > 0
    assert len(sms(phone)) == 5


# ------------------------------------------------------------------------------------------- malformed


def test_a_base64_form_body_is_read_like_a_plain_one(app: App, phone: str) -> None:
    assert twilio("create", app, {"To": phone, "Channel": "sms"}, base64_body=True).status == 201


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("raw_body", "content_type"),
    [
        ("To=%2B1&To=%2B2&Channel=sms", FORM),
        ("To=%FF&Channel=sms", FORM),
        ("To=1&&Channel=sms", FORM),
        ('{"To": "+14155552671", "Channel": "sms"}', "application/json"),
        ("Channel=sms", FORM),
        ("To=%2B14155552671&Channel=call", FORM),
        ("To=%2B14155552671&Channel=sms&CustomCode=424242", FORM),
    ],
)
def test_a_malformed_create_is_60200_never_a_500(app: App, raw_body: str, content_type: str) -> None:
    twilio_error(twilio("create", app, raw_body=raw_body, content_type=content_type), 400, 60200)


def _as_base64_event(app: App, raw_body: str) -> Reply:
    """A create whose body API Gateway marked base64, as given (it may not decode)."""
    event = copy.deepcopy(json.loads((ROOT / "events" / "twilio_verify_create.json").read_text()))
    event["path"] = ROUTES["create"].replace("{ServiceSid}", app.service_sid)
    event["pathParameters"] = {"ServiceSid": app.service_sid}
    event["headers"]["Authorization"] = app.basic
    event["multiValueHeaders"] = {key: [value] for key, value in event["headers"].items()}
    event["body"], event["isBase64Encoded"] = raw_body, True
    module = importlib.import_module("functions.twilio_verify.app")
    context = LambdaContext(
        function_name="TwilioVerifyFunction",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:TwilioVerifyFunction",
        aws_request_id=str(uuid.uuid4()),
    )
    result = module.lambda_handler(event, context)
    return Reply(result["statusCode"], {"Content-Type": "application/json"}, json.loads(result["body"]))


@pytest.mark.parametrize("body", ["not base64 at all!", base64.b64encode(b"To=\xff\xfe&Channel=sms").decode()])
def test_a_base64_body_that_does_not_decode_to_utf8_is_60200(app: App, body: str) -> None:
    twilio_error(_as_base64_event(app, body), 400, 60200)


@pytest.mark.parametrize("sid", ["VE" + "0" * 32, "VEzz", "%FF%FE", "%2B19995550100"])
def test_a_path_sid_that_names_nothing_is_404(app: App, sid: str) -> None:
    twilio_error(twilio("fetch", app, sid=sid), 404, 20404)
    twilio_error(twilio("update", app, {"Status": "canceled"}, sid=sid), 404, 20404)


def test_the_events_files_are_the_functions_requests(stack: Any) -> None:
    # Given the sample events as they are (placeholder SIDs and the local key)
    for route in ROUTES:
        event = json.loads((ROOT / "events" / f"twilio_verify_{route}.json").read_text())
        module = importlib.import_module("functions.twilio_verify.app")
        context = LambdaContext(
            function_name="TwilioVerifyFunction",
            memory_limit_in_mb=256,
            invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:TwilioVerifyFunction",
            aws_request_id=str(uuid.uuid4()),
        )
        result = module.lambda_handler(event, context)

        # Then each is routed and answered in Twilio's shape: the placeholder Service SID names no app
        assert result["statusCode"] == 401, (route, result["body"])
        assert json.loads(result["body"])["code"] == 20003
