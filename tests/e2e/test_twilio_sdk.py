"""The Twilio Verify facade driven by the real twilio-python (the PyPI ``twilio`` package) over HTTP: the README's
migration block as printed, every method it calls (create, fetch, update, check by number and by SID), and the
errors the SDK raises as ``TwilioRestException`` with Twilio's codes and statuses."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from local import REPO_ROOT
from tests.e2e.conftest import Api
from tests.e2e.test_apps import (
    APPS,
    admin,
    new_app,  # noqa: F401 - the fixture: apps made for a test, deleted after it
)

pytestmark = pytest.mark.e2e

README = REPO_ROOT / "README.md"


@dataclass
class TwilioApp:
    """An app as an integration written for Twilio sees it: a Verify Service, reached through twilio-python."""

    app_id: str
    api_key: str
    service_sid: str
    account_sid: str
    client: Client

    @property
    def service(self) -> Any:
        return self.client.verify.v2.services(self.service_sid)


def sdk_client(api: Api, account_sid: str, api_key: str) -> Client:
    """twilio-python pointed at the stack: the one line a migration adds."""
    client = Client(account_sid, api_key)
    client.verify.base_url = f"{api.url}/twilio"
    return client


@pytest.fixture
def twilio_app(api: Api, new_app: Callable[..., tuple[str, str]]) -> Callable[..., TwilioApp]:  # noqa: F811
    def make(settings: dict[str, Any] | None = None) -> TwilioApp:
        app_id, key = new_app(settings, label="twilio")
        record = admin(api, "GET", f"{APPS}/{app_id}").body
        sids = record["twilioServiceSid"], record["twilioAccountSid"]
        return TwilioApp(app_id, key, *sids, sdk_client(api, record["twilioAccountSid"], key))

    return make


@pytest.fixture
def shop(twilio_app: Callable[..., TwilioApp]) -> TwilioApp:
    return twilio_app({"resendCooldownSeconds": 0})


def raised(call: Callable[[], object]) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def sms_code(api: Api, phone: str) -> str:
    """The code of the newest SMS to ``phone`` (whatever lines autofill adds around it)."""
    return re.findall(r"\b[0-9]{6}\b", api.outbox(phone)[-1])[0]


def other_than(code: str) -> str:
    """A wrong code of the same length."""
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


# ------------------------------------------------------------------------------------------ the README


def readme_migration_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Drop-in for Twilio Verify", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    return block


def test_the_readmes_migration_block_runs_as_printed(
    api: Api, shop: TwilioApp, phone: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the README's block with its four constants set to this app and stack, and the test's number
    block = readme_migration_block()
    values = {"ACCOUNT_SID": shop.account_sid, "API_KEY": shop.api_key, "SERVICE_SID": shop.service_sid}
    values["API_URL"] = api.url
    for name, value in values.items():
        block, replaced = re.subn(rf'^{name} = "[^"\n]*"', f"{name} = {value!r}", block, flags=re.MULTILINE)
        assert replaced == 1, name
    assert block.count('"+14155552671"') == 2
    block = block.replace('"+14155552671"', repr(phone))

    # When it runs, the user typing the code the SMS brought
    namespace: dict[str, Any] = {"input": lambda prompt: sms_code(api, phone)}
    exec(compile(block, "README.md (Drop-in for Twilio Verify)", "exec"), namespace)  # noqa: S102 - the README's own code

    # Then the code was sent once and checked, as against Twilio
    assert capsys.readouterr().out.strip().endswith("verified")
    assert namespace["verification"].status == "pending"
    assert namespace["check"].status == "approved"
    assert len(api.outbox(phone)) == 1


# ------------------------------------------------------------------------------------------ the methods


def test_create_fetch_and_check_by_number(api: Api, shop: TwilioApp, phone: str) -> None:
    verification = shop.service.verifications.create(to=phone, channel="sms")

    assert re.fullmatch(r"VE[0-9a-f]{32}", verification.sid)
    assert (verification.service_sid, verification.account_sid) == (shop.service_sid, shop.account_sid)
    assert (verification.to, verification.channel, verification.status, verification.valid) == (
        phone,
        "sms",
        "pending",
        False,
    )
    # The SDK parsed the dates: they are ISO 8601 as Twilio sends them
    assert isinstance(verification.date_created, datetime.datetime)
    assert isinstance(verification.date_updated, datetime.datetime)
    assert len(verification.send_code_attempts) == 1
    assert verification.url.endswith(f"/twilio/v2/Services/{shop.service_sid}/Verifications/{verification.sid}")

    code = sms_code(api, phone)
    fetched = shop.service.verifications(verification.sid).fetch()
    by_number = shop.service.verifications(phone).fetch()
    wrong = shop.service.verification_checks.create(to=phone, code=other_than(code))
    approved = shop.service.verification_checks.create(to=phone, code=code)

    assert fetched.sid == by_number.sid == verification.sid and fetched.status == "pending"
    assert (wrong.status, wrong.valid) == ("pending", False)
    assert (approved.sid, approved.status, approved.valid) == (verification.sid, "approved", True)
    assert isinstance(approved.date_updated, datetime.datetime)
    # And, approved, it is gone
    gone = raised(shop.service.verifications(verification.sid).fetch)
    assert (gone.status, gone.code) == (404, 20404)
    again = raised(lambda: shop.service.verification_checks.create(to=phone, code=code))
    assert (again.status, again.code) == (404, 20404)


def test_check_by_verification_sid(api: Api, shop: TwilioApp, phone: str) -> None:
    sid = shop.service.verifications.create(to=phone, channel="sms").sid

    check = shop.service.verification_checks.create(verification_sid=sid, code=sms_code(api, phone))

    assert (check.sid, check.status) == (sid, "approved")


def test_create_again_resends_the_same_code_on_the_same_verification(api: Api, shop: TwilioApp, phone: str) -> None:
    first = shop.service.verifications.create(to=phone, channel="sms")
    again = shop.service.verifications.create(to=phone, channel="sms")

    assert again.sid == first.sid and len(again.send_code_attempts) == 2
    codes = {re.findall(r"\b[0-9]{6}\b", body)[0] for body in api.outbox(phone)}
    assert len(api.outbox(phone)) == 2 and len(codes) == 1


def test_cancel_with_update(api: Api, shop: TwilioApp, phone: str) -> None:
    sid = shop.service.verifications.create(to=phone, channel="sms").sid
    code = sms_code(api, phone)

    canceled = shop.service.verifications(sid).update(status="canceled")

    assert (canceled.sid, canceled.status) == (sid, "canceled")
    for call in (
        shop.service.verifications(sid).fetch,
        lambda: shop.service.verifications(sid).update(status="canceled"),
        lambda: shop.service.verification_checks.create(to=phone, code=code),
    ):
        error = raised(call)
        assert (error.status, error.code) == (404, 20404)


def test_locale_friendly_name_and_app_hash_shape_the_sms(api: Api, shop: TwilioApp, phone: str) -> None:
    shop.service.verifications.create(
        to=phone, channel="sms", locale="es", custom_friendly_name="Acme", app_hash="FA+9qCX9VSu"
    )

    (body,) = api.outbox(phone)
    assert body.startswith("<#> ") and body.endswith("\nFA+9qCX9VSu")
    assert "es tu clave de Acme" in body


def test_a_test_number_takes_its_fixed_code(api: Api, twilio_app: Callable[..., TwilioApp], phone: str) -> None:
    app = twilio_app({"testNumbers": [{"phoneNumber": phone, "code": "864202"}]})

    app.service.verifications.create(to=phone, channel="sms")
    approved = app.service.verification_checks.create(to=phone, code="864202")

    assert approved.status == "approved"
    assert [message["provider"] for message in api.messages(phone)] == ["test"]


# ------------------------------------------------------------------------------------------ the errors


@pytest.mark.parametrize(
    "fields",
    [
        {"channel": "call"},
        {"channel": "whatsapp"},
        {"channel": "email"},
        {"channel": "sna"},
        {"channel": "sms", "custom_code": "123456"},
        {"channel": "sms", "locale": "not a locale"},
        {"channel": "sms", "custom_friendly_name": "A name far longer than twenty"},
    ],
    ids=lambda fields: "-".join(f"{key}={value}" for key, value in fields.items()),
)
def test_refused_fields_raise_60200(api: Api, shop: TwilioApp, phone: str, fields: dict[str, str]) -> None:
    error = raised(lambda: shop.service.verifications.create(to=phone, **fields))

    assert (error.status, error.code) == (400, 60200)
    assert "Invalid parameter" in error.msg
    assert api.outbox(phone) == []


def test_an_invalid_number_raises_60200(shop: TwilioApp) -> None:
    error = raised(lambda: shop.service.verifications.create(to="+1415555", channel="sms"))

    assert (error.status, error.code) == (400, 60200)


def test_approving_without_a_code_raises_60200(shop: TwilioApp, phone: str) -> None:
    sid = shop.service.verifications.create(to=phone, channel="sms").sid

    error = raised(lambda: shop.service.verifications(sid).update(status="approved"))

    assert (error.status, error.code) == (400, 60200)
    assert shop.service.verifications(sid).fetch().status == "pending"


def test_the_resend_cooldown_raises_60203(twilio_app: Callable[..., TwilioApp], phone: str) -> None:
    app = twilio_app()
    app.service.verifications.create(to=phone, channel="sms")

    error = raised(lambda: app.service.verifications.create(to=phone, channel="sms"))

    assert (error.status, error.code) == (429, 60203)


def test_the_last_wrong_code_then_raises_60202(api: Api, twilio_app: Callable[..., TwilioApp], phone: str) -> None:
    app = twilio_app({"maxAttempts": 2})
    sid = app.service.verifications.create(to=phone, channel="sms").sid
    code = sms_code(api, phone)
    wrong = other_than(code)

    first = app.service.verification_checks.create(to=phone, code=wrong)
    last = app.service.verification_checks.create(to=phone, code=wrong)
    error = raised(lambda: app.service.verification_checks.create(to=phone, code=code))

    assert (first.status, last.status) == ("pending", "max_attempts_reached")
    assert (error.status, error.code) == (429, 60202)
    assert app.service.verifications(sid).fetch().status == "max_attempts_reached"


def test_a_blocked_country_raises_60605(shop: TwilioApp) -> None:
    # The e2e stack blocks France (E2E_POLICY), for every app that does not say otherwise
    error = raised(lambda: shop.service.verifications.create(to="+33612345678", channel="sms"))

    assert (error.status, error.code) == (403, 60605)


def test_a_fraud_guard_block_raises_60410(api: Api, shop: TwilioApp, phone: str) -> None:
    blocked = admin(api, "POST", "/v1/admin/fraud/blocks", {"appId": shop.app_id, "bucket": f"prefix:{phone[1:-3]}"})
    assert blocked.status == 201, blocked.body

    error = raised(lambda: shop.service.verifications.create(to=phone, channel="sms"))

    assert (error.status, error.code) == (403, 60410)
    assert api.outbox(phone) == []


def test_unknown_verifications_raise_20404(shop: TwilioApp, phone: str) -> None:
    for call in (
        shop.service.verifications("VE" + "0" * 32).fetch,
        shop.service.verifications(phone).fetch,
        lambda: shop.service.verification_checks.create(to=phone, code="123456"),
        lambda: shop.service.verification_checks.create(verification_sid="VE" + "0" * 32, code="123456"),
    ):
        error = raised(call)
        assert (error.status, error.code) == (404, 20404)


def test_wrong_credentials_raise_20003(api: Api, shop: TwilioApp, twilio_app: Callable[..., TwilioApp]) -> None:
    other = twilio_app()
    clients = [
        sdk_client(api, shop.account_sid, "sk_not-a-key"),
        sdk_client(api, shop.account_sid, other.api_key),
        sdk_client(api, other.account_sid, shop.api_key),
        sdk_client(api, shop.account_sid, api.api_key),
    ]
    for client in clients:
        error = raised(
            lambda client=client: client.verify.v2.services(shop.service_sid).verifications.create(
                to="+14155552671", channel="sms"
            )
        )
        assert (error.status, error.code) == (401, 20003)
    # And the app's own credentials on another app's Service
    error = raised(lambda: shop.client.verify.v2.services(other.service_sid).verifications("VE" + "0" * 32).fetch())
    assert (error.status, error.code) == (401, 20003)


def test_another_apps_verification_is_unknown(
    api: Api, shop: TwilioApp, twilio_app: Callable[..., TwilioApp], phone: str
) -> None:
    other = twilio_app()
    sid = shop.service.verifications.create(to=phone, channel="sms").sid

    error = raised(other.service.verifications(sid).fetch)

    assert (error.status, error.code) == (404, 20404)
    assert shop.service.verification_checks.create(verification_sid=sid, code=sms_code(api, phone)).status == "approved"
