"""Security-review regressions over HTTP: ID tokens are not access tokens, and non-finite JSON numbers are 400."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Api, Idp

pytestmark = pytest.mark.e2e

SEND = "/v1/verification/sms/send"


@pytest.mark.parametrize("typ", ["JWT", None], ids=["typ-JWT", "no-typ"])
def test_an_id_token_of_the_customers_idp_is_not_an_access_token(
    api: Api, idp: Idp, new_user, phone: str, typ: str | None
) -> None:
    # Given a token the customer's IdP signed for this user, issuer and audience, typed as an ID token
    user = new_user()
    id_token = idp.token(user, headers={"typ": typ})

    # When it is used as the bearer token of a phone verification send
    reply = api.with_token("POST", SEND, id_token, {"phoneNumber": phone})

    # Then it is refused and nothing is sent, while the same user's access token (typ at+jwt) works
    assert reply.status == 401, reply.body
    assert reply.body["code"] == "UNAUTHORIZED"
    assert api.outbox(phone) == []
    assert api.with_token("POST", SEND, idp.token(user), {"phoneNumber": phone}).status == 202


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_non_finite_number_in_a_track_body_is_400(api: Api, new_user, number: str) -> None:
    # Given a track request whose risk score is not a finite number (a "gt 90" rule would never fire on NaN)
    body = f'{{"userId": "{new_user()}", "action": "withdraw", "attributes": {{"custom": {{"riskScore": {number}}}}}}}'

    # When it is posted
    reply = api.call("POST", "/v1/track", raw=body.encode())

    # Then it is an invalid request, not a decision
    assert reply.status == 400, reply.body
    assert reply.body["code"] == "INVALID_REQUEST"
    assert "token" not in reply.body
