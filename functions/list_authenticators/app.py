"""GET /v1/users/{userId}/authenticators: the user's authenticators, numbers masked."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, caller_app, json_response, make_resolver, path_user_id
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.get("/v1/users/<userId>/authenticators")
def list_authenticators(userId: str) -> Response:  # noqa: N803 - the contract's path parameter
    app_id = caller_app(app)
    runtime.policy(app_id)  # a deleted app's keys are refused at once, not only after the authorizer's cache
    listed = runtime.authenticator_directory(app_id).list(path_user_id(userId))
    return json_response(200, replies.authenticator_list(listed))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
