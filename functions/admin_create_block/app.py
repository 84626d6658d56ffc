"""POST /v1/admin/fraud/blocks: a manual block of a country or prefix (the kill switch), for one app or all."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, json_response, make_resolver, parse_body
from otp_core.models import BlockRequest
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.post("/v1/admin/fraud/blocks")
def create_block() -> Response:
    request = parse_body(app, BlockRequest)
    block = runtime.fraud_admin().block(
        runtime.fraud_admin().app_of(request.app_id, every=True), request.bucket, request.until
    )
    return json_response(201, replies.block_view(block), headers={"Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
