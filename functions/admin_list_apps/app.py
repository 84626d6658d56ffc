"""GET /v1/admin/apps: every live app, ``default`` included."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, json_response, make_resolver, require_no_body
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.get("/v1/admin/apps")
def list_apps() -> Response:
    require_no_body(app, "GET takes no body")
    return json_response(200, replies.app_list(runtime.app_admin().list()))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
