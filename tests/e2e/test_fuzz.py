"""Contract fuzzing: schemathesis generates requests for every operation of the served /v1/openapi.json, valid and
invalid, with the credential the operation names, and every answer must be no 5xx, of a documented status and
content type, and fit its documented schema.

Random strings are almost never a valid phone number or a live ID, so about half of the requests get seeds put
in: valid numbers, and the IDs of challenges, an app, a key and an authenticator made for the run. That way the
fuzzer reaches the handlers' success paths, not only their 400s and 404s.

Runs against the local stack only (moto's SNS, no real SMS). The fuzzer's numbers are British, each in its own
thousand-number block, so its sends touch no fraud bucket of the other tests (all American). The operator routes
change the stack's state (an omitted appId is the app default), so the module lifts the blocks the run set, puts
back default's safe list and deletes the apps it created. ``FUZZ_MAX_EXAMPLES`` (30 by default) sets the requests
per operation for a deeper run: 300 takes about three and a half minutes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import phonenumbers
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from otp_core.openapi import ROUTES, Route
from tests.e2e.conftest import Api

pytestmark = pytest.mark.e2e
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Valid and invalid requests per operation: enough to reach each handler's branches, bounded so that the whole
# module finishes in about a minute.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "30"))
FUZZ_USER = "fuzz"


def british_mobiles(count: int) -> list[str]:
    """Valid GB mobile numbers, each in its own thousand-number block (the fraud guard's finest bucket)."""
    found = []
    for block in range(100000, 1000000, 997):
        number = f"+447{block:06d}253"
        parsed = phonenumbers.parse(number)
        if (
            phonenumbers.is_valid_number(parsed)
            and phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
        ):
            found.append(number)
        if len(found) == count:
            return found
    raise AssertionError("not enough numbers")


@dataclass(frozen=True)
class Seeds:
    """Values that exist on the stack, put into generated requests in place of random ones."""

    numbers: list[str]
    path: dict[str, list[str]]
    query: dict[str, list[str]]


@pytest.fixture(scope="module")
def schema(api: Api) -> Any:
    if not api.local:
        pytest.skip("fuzzing sends SMS and changes operator state: the local stack only")
    return schemathesis.openapi.from_url(f"{api.url}/v1/openapi.json")


@pytest.fixture(scope="module")
def credentials(api: Api, schema: Any) -> dict[str, str]:
    """The Authorization header of each security scheme: the stack's keys, a client token from /v1/track and a
    user access token of the local identity provider."""
    tracked = api.call("POST", "/v1/track", {"userId": FUZZ_USER, "action": "signInWithSms"})
    assert tracked.status == 200, tracked.body
    minted = api.call("POST", "/_local/idp/token", {"sub": FUZZ_USER}, auth=None)
    assert minted.status == 200, minted.body
    return {
        "apiKey": f"Bearer {api.api_key}",
        "adminKey": f"Bearer {api.admin_key}",
        "clientToken": f"Bearer {tracked.body['token']}",
        "userAccessToken": f"Bearer {minted.body['accessToken']}",
    }


@pytest.fixture(scope="module", autouse=True)
def _operator_state_restored(api: Api, schema: Any) -> Iterator[None]:
    admin = f"Bearer {api.admin_key}"
    apps_before = {app["appId"] for app in api.call("GET", "/v1/admin/apps", auth=admin).body["apps"]}
    safe_list = api.call("GET", "/v1/admin/fraud/safe-list", auth=admin).body["entries"]
    blocks_before = _blocks(api, admin)
    yield
    # Blocks the run set for default, or for every app ("*"), would refuse later tests' sends
    for app_id, bucket in _blocks(api, admin) - blocks_before:
        lifted = api.call("DELETE", f"/v1/admin/fraud/blocks/{bucket}?appId={app_id}", auth=admin)
        assert lifted.status in (204, 404), lifted.body
    restored = api.call("PUT", "/v1/admin/fraud/safe-list", {"entries": safe_list}, auth=admin)
    assert restored.status == 200, restored.body
    for app in api.call("GET", "/v1/admin/apps", auth=admin).body["apps"]:
        if app["appId"] not in apps_before:
            deleted = api.call("DELETE", f"/v1/admin/apps/{app['appId']}", auth=admin)
            assert deleted.status == 204, deleted.body


def _blocks(api: Api, admin: str) -> set[tuple[str, str]]:
    listed = api.call("GET", "/v1/admin/fraud/blocks", auth=admin)
    assert listed.status == 200, listed.body
    return {(block["appId"], block["bucket"]) for block in listed.body["blocks"]}


@pytest.fixture(scope="module")
def seeds(api: Api, schema: Any, _operator_state_restored: None) -> Seeds:
    admin = f"Bearer {api.admin_key}"
    numbers = british_mobiles(60)
    challenges = []
    for number in numbers[:3]:
        created = api.call("POST", "/v1/challenges", {"phoneNumber": number, "action": "signInWithSms"})
        assert created.status == 201, created.body
        challenges.append(created.body["challengeId"])
    app_id = f"fuzz-{uuid.uuid4().hex[:8]}"
    app = api.call("POST", "/v1/admin/apps", {"appId": app_id, "name": "Fuzz"}, auth=admin)
    assert app.status == 201, app.body
    key = api.call("POST", f"/v1/admin/apps/{app_id}/keys", {"description": "fuzz"}, auth=admin)
    assert key.status == 201, key.body
    block = api.call("POST", "/v1/admin/fraud/blocks", {"appId": app_id, "bucket": "country:ZW"}, auth=admin)
    assert block.status == 201, block.body
    enrolled = api.call(
        "POST",
        f"/v1/users/{FUZZ_USER}-enrolled/authenticators",
        {"verificationMethod": "SMS", "phoneNumber": numbers[3]},
    )
    assert enrolled.status == 201, enrolled.body
    return Seeds(
        numbers=numbers[4:],
        path={
            "challengeId": challenges,
            "appId": [app_id],
            "keyId": [key.body["keyId"]],
            "userId": [FUZZ_USER, f"{FUZZ_USER}-enrolled"],
            "authenticatorId": [enrolled.body["authenticatorId"]],
            "provider": ["twilio", "webhook"],
            "bucket": ["country:ZW"],
        },
        query={"appId": [app_id]},
    )


def _seeded(case: Any, data: st.DataObject, seeds: Seeds) -> None:
    """Put live values into about half of the case's parameters and body fields."""
    for name in list(case.path_parameters or {}):
        if name in seeds.path and data.draw(st.booleans()):
            case.path_parameters[name] = data.draw(st.sampled_from(seeds.path[name]))
    for name in list(case.query or {}):
        if name in seeds.query and data.draw(st.booleans()):
            case.query[name] = data.draw(st.sampled_from(seeds.query[name]))
    body = case.body if isinstance(case.body, dict) else None
    for holder in (body, body.get("attributes") if body else None):
        if isinstance(holder, dict) and "phoneNumber" in holder and data.draw(st.booleans()):
            holder["phoneNumber"] = data.draw(st.sampled_from(seeds.numbers))
    if body is not None and "appId" in body and data.draw(st.booleans()):
        body["appId"] = data.draw(st.sampled_from(seeds.query["appId"]))
    if body is not None and "bucket" in body and data.draw(st.booleans()):
        body["bucket"] = data.draw(st.sampled_from(seeds.path["bucket"]))


def test_the_served_document_describes_every_route_of_the_table(schema: Any) -> None:
    # Given the operations schemathesis read from the stack's /v1/openapi.json
    served = {(result.ok().method.upper(), result.ok().path) for result in schema.get_all_operations()}

    # Then they are the route table's, each loadable
    assert served == {(route.method, route.path) for route in ROUTES}


# Deletions last (the app's last of all), so that the seeds they may remove serve every other operation first.
ORDER = sorted(ROUTES, key=lambda route: (route.method == "DELETE", route.path == "/v1/admin/apps/{appId}"))


@pytest.mark.parametrize("route", ORDER, ids=lambda route: route.operation_id)
def test_no_request_gets_a_server_error_or_an_answer_off_its_schema(
    api: Api, schema: Any, credentials: dict[str, str], seeds: Seeds, route: Route
) -> None:
    # Given the operation's valid and invalid requests, sent with the credential it names
    operation = schema[route.path][route.method]
    headers = {"Authorization": credentials[route.security]} if route.security else {}
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, headers=headers),
        operation.as_strategy(GenerationMode.NEGATIVE, headers=headers),
    )

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, data=st.data())
    def send(case: Any, data: st.DataObject) -> None:
        _seeded(case, data, seeds)
        # Then every answer is documented for the operation: status, content type and body
        case.call_and_validate(base_url=api.url, headers=headers, checks=CHECKS, timeout=30)

    send()
