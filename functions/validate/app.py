"""POST /v1/validate: check a verification or client token on the server; a success validates once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, caller_app, json_response, make_resolver, parse_body
from otp_core.models import ValidateRequest
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.post("/v1/validate")
def validate() -> Response:
    request = parse_body(app, ValidateRequest)
    app_id = caller_app(app)
    validation = runtime.token_validator(app_id).validate(request.token, request.action, runtime.policy(app_id))
    return json_response(200, replies.validate_result(validation))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
