"""POST /v1/admin/apps/{appId}/keys: a new API key of the app, its secret shown in this answer only."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, json_response, make_resolver, parse_body, request_text
from otp_core.models import KeyCreateRequest
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.post("/v1/admin/apps/<appId>/keys")
def create_key(appId: str) -> Response:  # noqa: N803 - the contract's path parameter
    # Every field is optional, so no body at all means no description.
    request = parse_body(app, KeyCreateRequest) if request_text(app) is not None else KeyCreateRequest()
    made = runtime.app_admin().create_key(appId, request.description)
    # The answer holds the key's secret: nothing logs it (the tracer does not capture responses, the router
    # logs none) and API Gateway's access log records no bodies.
    return json_response(201, replies.key_created(made))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
