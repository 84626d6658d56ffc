"""The local stack as a developer meets it: its banner, its counters reset, its hints, ``make invoke``."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from local import REPO_ROOT
from local.gateway import EMPTY_METRICS_WARNING, HINT_HEADER
from tests.e2e.conftest import Api, Idp, unverified

pytestmark = pytest.mark.e2e

_TOKENS_LINE = re.compile(r"^Tokens:\s+iss (?P<iss>\S+), aud (?P<aud>\S+), ES256 keys at (?P<jwks>\S+)$", re.MULTILINE)


@pytest.fixture
def local_api(api: Api) -> Api:
    if api.process is None:
        pytest.skip("the local stack's own routes and console")
    return api


def _sign_in(api: Api, phone: str) -> str:
    created = api.call("POST", "/v1/challenges", {"phoneNumber": phone, "action": "signInWithSms"})
    assert created.status == 201, created.body
    verified = api.call("POST", f"/v1/challenges/{created.body['challengeId']}/verify", {"code": api.code(phone)})
    assert verified.status == 200, verified.body
    token: str = verified.body["token"]
    return token


def test_the_banner_names_the_issuer_and_audience_of_the_tokens(local_api: Api, phone: str) -> None:
    assert local_api.process is not None
    banner = _TOKENS_LINE.search(local_api.process.log())
    assert banner is not None, "no Tokens: line in the banner"

    _, claims = unverified(_sign_in(local_api, phone))

    assert (claims["iss"], claims["aud"]) == (banner["iss"], banner["aud"])
    assert banner["jwks"] == f"{local_api.url}/.well-known/jwks.json"


def test_a_health_check_leaves_no_metrics_warning(local_api: Api) -> None:
    assert local_api.process is not None
    seen = len(local_api.process.log())

    for _ in range(2):
        assert local_api.call("GET", "/v1/health", auth=None).status == 200

    assert EMPTY_METRICS_WARNING not in local_api.process.log()[seen:]


def test_deleting_the_counters_lifts_a_send_cap(local_api: Api, phone: str) -> None:
    # Given a number at its 10-minute cap
    body = {"phoneNumber": phone, "action": "signInWithSms"}
    statuses = [local_api.call("POST", "/v1/challenges", body).status for _ in range(6)]
    assert statuses == [201] * 5 + [429]

    # When the counters are deleted (no API key: a local-only route, like the outbox)
    reset = local_api.call("DELETE", "/_local/counters", auth=None)

    # Then the number gets a code again
    assert reset.status == 200
    assert reset.body["deleted"] >= 2
    assert local_api.call("POST", "/v1/challenges", body).status == 201


def test_a_user_token_for_another_port_is_refused_with_a_hint(local_api: Api, idp: Idp, phone: str) -> None:
    assert local_api.process is not None
    seen = len(local_api.process.log())
    token = idp.token("user-hint", issuer="http://127.0.0.1:1/_local/idp")

    refused = local_api.with_token("POST", "/v1/verification/sms/send", token, {"phoneNumber": phone})

    assert refused.status == 401
    assert idp.issuer in refused.headers[HINT_HEADER]
    assert "iss 'http://127.0.0.1:1/_local/idp' is not" in local_api.process.log()[seen:]


def test_make_invoke_verifies_the_sample_twilio_callback() -> None:
    if os.environ.get("API_URL"):
        pytest.skip("make invoke runs the local services")
    environment = {name: value for name, value in os.environ.items() if not name.startswith("MAKE")}
    environment.pop("MFLAGS", None)

    ran = subprocess.run(
        ["make", "-s", "invoke", "FUNCTION=DeliveryStatusFunction", "EVENT=events/delivery_status_twilio.json"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr[-3000:]
    # The signature checks out against the local provider secret; the challenge is unknown, which is acknowledged
    assert json.loads(ran.stdout)["statusCode"] == 204, ran.stderr[-3000:]


@pytest.mark.parametrize("method", ["TRACE", "CONNECT"])
def test_methods_no_route_has_answer_a_404_problem_like_api_gateway(api: Api, method: str) -> None:
    if not api.local:
        pytest.skip("the local gateway's own answer")
    reply = api.call(method, "/v1/health", auth=None)
    assert reply.status == 404 and reply.body["code"] == "NOT_FOUND"
