"""The Authsignal facade's server routes (``/authsignal/v1/...``), for Authsignal's server SDKs.

One function serves them all. API Gateway runs no authorizer here: the SDKs authenticate with HTTP Basic (an API
key of the app as user name, an empty password), which this function checks before anything else as the key
authorizer does (by digest; the admin key is refused). Each route calls the native use case it maps to
(otp_core.facades.authsignal); every answer is ``application/json`` and every error Authsignal's
``{"error", "errorCode", "errorDescription"}`` with the native status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import runtime
from otp_core.errors import InvalidRequestError
from otp_core.facades import authsignal
from otp_core.facades.authsignal import PREFIX
from otp_core.http import Response, make_resolver, public_base_url, query_values
from otp_core.observability import logger, metrics, tracer

app = make_resolver()

USER = f"{PREFIX}/users/<userId>"
ACTION = f"{USER}/actions/<action>"


def caller() -> authsignal.Caller:
    """The app of the request's API key (checked before the body is read: a wrong key is a 401, never a 400)."""
    return authsignal.server_caller(app.current_event.headers.get("Authorization"))


@app.post(ACTION)
def track(userId: str, action: str) -> Response:  # noqa: N803 - Authsignal's path parameter
    who = caller()
    base_url = public_base_url(app, runtime.settings().public_base_url)
    return authsignal.answer(authsignal.track(who, userId, action, authsignal.request_body(app), base_url))


@app.get(f"{ACTION}/<idempotencyKey>")
def get_action(userId: str, action: str, idempotencyKey: str) -> Response:  # noqa: N803
    return authsignal.answer(authsignal.get_action(caller(), userId, action, idempotencyKey))


@app.patch(f"{ACTION}/<idempotencyKey>")
def update_action(userId: str, action: str, idempotencyKey: str) -> Response:  # noqa: N803
    who = caller()
    body = authsignal.request_body(app)
    return authsignal.answer(authsignal.update_action(who, userId, action, idempotencyKey, body))


@app.get(USER)
def get_user(userId: str) -> Response:  # noqa: N803
    return authsignal.answer(authsignal.get_user(caller(), userId))


@app.patch(USER)
def update_user(userId: str) -> Response:  # noqa: N803
    who = caller()
    return authsignal.answer(authsignal.update_user(who, userId, authsignal.request_body(app)))


@app.delete(USER)
def delete_user(userId: str) -> Response:  # noqa: N803
    return authsignal.answer(authsignal.delete_user(caller(), userId, query_values(app, "actions")))


@app.get(f"{USER}/authenticators")
def list_authenticators(userId: str) -> Response:  # noqa: N803
    return authsignal.answer(authsignal.list_authenticators(caller(), userId))


@app.post(f"{USER}/authenticators")
def enroll_authenticator(userId: str) -> Response:  # noqa: N803
    who = caller()
    return authsignal.answer(authsignal.enroll_authenticator(who, userId, authsignal.request_body(app)))


@app.delete(f"{USER}/authenticators/<userAuthenticatorId>")
def delete_authenticator(userId: str, userAuthenticatorId: str) -> Response:  # noqa: N803
    return authsignal.answer(authsignal.delete_authenticator(caller(), userId, userAuthenticatorId))


@app.post(f"{PREFIX}/validate")
def validate() -> Response:
    who = caller()
    return authsignal.answer(authsignal.validate(who, authsignal.request_body(app)))


@app.post(f"{PREFIX}/challenge")
def challenge() -> Response:
    who = caller()
    return authsignal.answer(authsignal.challenge(who, authsignal.request_body(app)))


@app.post(f"{PREFIX}/verify")
def verify() -> Response:
    who = caller()
    return authsignal.answer(authsignal.verify(who, authsignal.request_body(app)))


@app.post(f"{PREFIX}/claim")
def claim() -> Response:
    who = caller()
    return authsignal.answer(authsignal.claim(who, authsignal.request_body(app)))


# The SDKs' methods of features this service does not have, routed so that they answer a 400 the SDKs read (in
# Authsignal's error shape, after the key is checked) rather than API Gateway's 404.
UNSUPPORTED = {
    ("GET", f"{PREFIX}/users"): "queryUsers is not available: this service looks users up by ID only",
    ("GET", f"{USER}/actions"): "queryUserActions is not available: read an action with getAction",
    ("GET", f"{PREFIX}/challenges"): "getChallenge is not available: a challenge is read through its verify answer",
    ("POST", f"{PREFIX}/sessions"): "sessions are not available: validate the verification token with /validate",
    ("POST", f"{PREFIX}/sessions/<operation>"): "sessions are not available: validate tokens with /validate",
    ("POST", f"{PREFIX}/sessions/user/revoke"): "sessions are not available: this service issues no session",
}


def _unsupported(why: str) -> Callable[..., Response]:
    def refuse(**_: str) -> Response:
        caller()
        raise InvalidRequestError(why)

    return refuse


for (_method, _rule), _why in UNSUPPORTED.items():
    app.route(_method, _rule)(_unsupported(_why))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return authsignal.authsignal_proxy(app.resolve(event, context))
