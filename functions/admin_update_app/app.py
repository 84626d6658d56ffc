"""PATCH /v1/admin/apps/{appId}: rename an app and change its settings key by key (null removes one)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, json_response, make_resolver, parse_body
from otp_core.models import AppPatchRequest
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.patch("/v1/admin/apps/<appId>")
def update_app(appId: str) -> Response:  # noqa: N803 - the contract's path parameter
    request = parse_body(app, AppPatchRequest)
    record = runtime.app_admin().patch(appId, request.name, request.settings)
    return json_response(200, replies.app_view(record))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
