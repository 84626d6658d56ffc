"""The fraud guard over HTTP: every operator route and its errors, the admin key's reach, and a send refused."""

from __future__ import annotations

import itertools

import pytest

from tests.e2e.conftest import Api

pytestmark = pytest.mark.e2e

BLOCKS = "/v1/admin/fraud/blocks"
SAFE = "/v1/admin/fraud/safe-list"
ADMIN_ROUTES = [("GET", BLOCKS), ("POST", BLOCKS), ("DELETE", f"{BLOCKS}/country:IS"), ("GET", SAFE), ("PUT", SAFE)]
# Iceland's mobiles +354 611 xxxx: no other e2e test sends there, so its buckets are this file's own.
_blocks = itertools.count(11)


def admin(api: Api, method: str, path: str, body: object = None):
    if not api.admin_key:
        pytest.skip("ADMIN_KEY is not set for the deployed stack")
    return api.call(method, path, body, auth=f"Bearer {api.admin_key}")


def create(api: Api, phone: str):
    return api.call("POST", "/v1/challenges", {"phoneNumber": phone, "action": "signIn"})


def fresh_block() -> str:
    """A thousand-number block of Icelandic mobiles no test used yet, e.g. ``+3546111`` (then 3 digits)."""
    return f"+35461{next(_blocks):02d}"


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_an_app_key_is_forbidden_on_admin_routes(api: Api, method: str, path: str) -> None:
    reply = api.call(method, path, {"bucket": "country:IS"} if method == "POST" else None)
    assert reply.status == 403, reply.body
    assert reply.body["code"] == "FORBIDDEN"
    assert reply.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_a_missing_or_unknown_key_is_unauthorized_on_admin_routes(api: Api, method: str, path: str) -> None:
    assert api.call(method, path, auth=None).status == 401
    assert api.call(method, path, auth="Bearer not-the-admin-key").status == 401


def test_the_admin_key_opens_no_other_route(api: Api) -> None:
    if not api.admin_key:
        pytest.skip("ADMIN_KEY is not set for the deployed stack")
    reply = api.call(
        "POST", "/v1/challenges", {"phoneNumber": "+3546119000", "action": "signIn"}, auth=f"Bearer {api.admin_key}"
    )
    assert reply.status == 401, reply.body
    assert reply.body["code"] == "UNAUTHORIZED"


def test_a_manual_block_refuses_sends_until_deleted(api: Api) -> None:
    # Given a manual block of a prefix (the kill switch)
    prefix = fresh_block()
    phone = f"{prefix}123"
    reply = admin(api, "POST", BLOCKS, {"bucket": f"prefix:{prefix[1:]}"})
    assert reply.status == 201, reply.body
    assert reply.body == {
        "appId": "default",
        "bucket": f"prefix:{prefix[1:]}",
        "reason": "MANUAL",
        "since": reply.body["since"],
        "until": None,
        "sends": 0,
        "verified": 0,
    }
    listed = admin(api, "GET", f"{BLOCKS}?appId=default", None).body["blocks"]
    assert f"prefix:{prefix[1:]}" in [block["bucket"] for block in listed]

    # Then a send there is refused as problem+json naming the level, never the number, and nothing is sent
    refused = create(api, phone)
    assert refused.status == 403, refused.body
    assert refused.body["code"] == "DESTINATION_BLOCKED"
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert "prefix" in refused.body["detail"] and prefix[1:] not in refused.body["detail"]
    if api.local:
        assert api.outbox(phone) == []

    # And once deleted, sends flow again; a second delete finds nothing to lift
    assert admin(api, "DELETE", f"{BLOCKS}/prefix:{prefix[1:]}").status == 204
    assert admin(api, "DELETE", f"{BLOCKS}/prefix%3A{prefix[1:]}").status == 404
    assert create(api, phone).status == 201


def test_a_block_for_every_app_is_listed_for_every_app(api: Api) -> None:
    reply = admin(api, "POST", BLOCKS, {"appId": "*", "bucket": "country:IS", "until": "2099-01-01T00:00:00Z"})
    assert reply.status == 201, reply.body
    assert reply.body["appId"] == "*" and reply.body["until"] == "2099-01-01T00:00:00Z"
    try:
        listed = admin(api, "GET", BLOCKS).body["blocks"]
        assert {"appId": "*", "bucket": "country:IS"}.items() <= next(
            b for b in listed if b["bucket"] == "country:IS"
        ).items()
        assert create(api, "+3546119001").status == 403
    finally:
        assert admin(api, "DELETE", f"{BLOCKS}/country:IS?appId=*").status == 204


def test_the_eleventh_send_to_a_block_trips_it_and_the_operator_sees_why(api: Api) -> None:
    prefix = fresh_block()
    for last in range(10):
        assert create(api, f"{prefix}{last:03d}").status == 201
    refused = create(api, f"{prefix}999")
    assert refused.status == 403 and refused.body["code"] == "DESTINATION_BLOCKED"
    [block] = [b for b in admin(api, "GET", BLOCKS).body["blocks"] if b["bucket"] == f"prefix:{prefix[1:]}"]
    assert (block["reason"], block["sends"], block["verified"]) == ("VELOCITY", 10, 0)
    assert block["until"] is not None
    # Unblocked, the bucket starts afresh
    assert admin(api, "DELETE", f"{BLOCKS}/prefix:{prefix[1:]}").status == 204
    assert create(api, f"{prefix}999").status == 201


@pytest.mark.parametrize("bucket", ["country:is", "country:ISL", "prefix:354", "prefix:+3546", "city:Reykjavik", ""])
def test_a_bad_bucket_is_a_400(api: Api, bucket: str) -> None:
    reply = admin(api, "POST", BLOCKS, {"bucket": bucket})
    assert reply.status == 400, reply.body
    assert reply.body["code"] == "INVALID_REQUEST"
    assert [error["field"] for error in reply.body["errors"]] == ["bucket"]


@pytest.mark.parametrize("bucket", ["country:is", "prefix:12", "nothing"])
def test_deleting_a_bad_bucket_is_a_400(api: Api, bucket: str) -> None:
    assert admin(api, "DELETE", f"{BLOCKS}/{bucket}").status == 400


@pytest.mark.parametrize(
    "body",
    [
        {"bucket": "country:IS", "until": "2000-01-01T00:00:00Z"},
        {"bucket": "country:IS", "until": "tomorrow"},
        {"bucket": "country:IS", "appId": "Not An App"},
        {"bucket": "country:IS", "extra": 1},
        {"bucket": 7},
    ],
    ids=["past-until", "bad-until", "bad-app", "unknown-field", "not-a-string"],
)
def test_a_bad_block_request_is_a_400_and_blocks_nothing(api: Api, body: dict[str, object]) -> None:
    assert admin(api, "POST", BLOCKS, body).status == 400
    assert "country:IS" not in [b["bucket"] for b in admin(api, "GET", BLOCKS).body["blocks"]]


def test_the_safe_list_is_read_and_replaced_whole(api: Api) -> None:
    reply = admin(api, "PUT", SAFE, {"entries": ["+3546110000", "prefix:3546110", "+3546110000"]})
    assert reply.status == 200, reply.body
    assert reply.body == {"entries": ["+3546110000", "prefix:3546110"]}
    assert admin(api, "GET", f"{SAFE}?appId=default").body == {"entries": ["+3546110000", "prefix:3546110"]}
    assert admin(api, "PUT", SAFE, {"entries": []}).body == {"entries": []}


def test_bad_safe_list_entries_are_named(api: Api) -> None:
    reply = admin(api, "PUT", SAFE, {"entries": ["+3546110000", "3546110000", "prefix:35", "country:IS"]})
    assert reply.status == 400, reply.body
    assert [error["field"] for error in reply.body["errors"]] == ["entries[1]", "entries[2]", "entries[3]"]
    assert admin(api, "PUT", f"{SAFE}?appId=*", {"entries": []}).status == 400


def test_an_unknown_app_is_404_so_a_misspelt_kill_switch_never_looks_engaged(api: Api) -> None:
    reply = admin(api, "POST", BLOCKS, {"appId": "defualt", "bucket": "country:IS"})
    assert reply.status == 404, reply.body
    assert admin(api, "GET", f"{SAFE}?appId=defualt").status == 404
