"""DELETE /v1/users/{userId}/authenticators/{authenticatorId}: remove the user's SMS authenticator."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import runtime
from otp_core.http import Response, caller_app, make_resolver, path_user_id
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.delete("/v1/users/<userId>/authenticators/<authenticatorId>")
def delete_authenticator(userId: str, authenticatorId: str) -> Response:  # noqa: N803 - contract names
    app_id = caller_app(app)
    runtime.policy(app_id)  # a deleted app's keys are refused at once, not only after the authorizer's cache
    runtime.authenticator_directory(app_id).delete(path_user_id(userId), authenticatorId)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
