"""502 DELIVERY_FAILED over HTTP: a stack whose only provider is unreachable (local stack only)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from local.stack import spawn_local_stack
from tests.e2e.conftest import Api

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def failing_api() -> Iterator[Api]:
    if os.environ.get("API_URL"):
        pytest.skip("needs a local stack whose SMS provider is down")
    # Port 9 (discard) on loopback refuses connections: every send fails before anything could be delivered.
    env = {"SMS_PROVIDERS": "twilio", "SMS_PROVIDER_ENDPOINTS": "twilio=http://127.0.0.1:9"}
    with spawn_local_stack(env=env) as stack:
        yield Api(stack.url, stack.api_key, local=True)


def test_every_provider_down_is_502_and_charges_nothing(failing_api: Api) -> None:
    body = {"phoneNumber": "+16502545000", "action": "signIn"}

    replies = [failing_api.call("POST", "/v1/challenges", body) for _ in range(7)]

    # More attempts than the 5-per-10-minutes cap, all 502: failed sends are not counted against the number
    assert [reply.status for reply in replies] == [502] * 7
    assert replies[0].body["code"] == "DELIVERY_FAILED"
    assert replies[0].headers["Content-Type"].startswith("application/problem+json")
    assert failing_api.call("GET", "/_local/outbox", auth=None).body == {"messages": []}
