"""DELETE /v1/admin/apps/{appId}: delete an app for good; its keys answer 401 within 60 seconds."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import runtime
from otp_core.http import Response, make_resolver, require_no_body
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.delete("/v1/admin/apps/<appId>")
def delete_app(appId: str) -> Response:  # noqa: N803 - the contract's path parameter
    require_no_body(app, "DELETE takes no body")
    runtime.app_admin().delete(appId)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
