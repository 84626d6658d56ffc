"""POST /v1/users/{userId}/authenticators: enroll (or replace) a number verified elsewhere."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, caller_app, json_response, make_resolver, parse_body, path_user_id
from otp_core.models import EnrollAuthenticatorRequest
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.post("/v1/users/<userId>/authenticators")
def enroll_authenticator(userId: str) -> Response:  # noqa: N803 - the contract's path parameter
    user_id = path_user_id(userId)
    request = parse_body(app, EnrollAuthenticatorRequest)
    app_id = caller_app(app)
    enrolled = runtime.authenticator_enroller(app_id).enroll(user_id, request.phone_number, runtime.policy(app_id))
    return json_response(201, replies.authenticator_view(enrolled))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
