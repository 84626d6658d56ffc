"""GET /v1/admin/fraud/blocks?appId=: the blocks in force for an app (its own and every app's), with evidence."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, json_response, make_resolver, query_parameter, require_no_body
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.get("/v1/admin/fraud/blocks")
def list_blocks() -> Response:
    require_no_body(app, "GET takes no body")
    app_id = runtime.fraud_admin().app_of(query_parameter(app, "appId"), every=True)
    blocks = runtime.fraud_admin().blocks(app_id)
    return json_response(200, replies.block_list(blocks), headers={"Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
