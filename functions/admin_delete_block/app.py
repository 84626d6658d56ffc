"""DELETE /v1/admin/fraud/blocks/{bucket}?appId=: lift a block; the bucket's counts and doubling start afresh."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import runtime
from otp_core.http import Response, make_resolver, query_parameter, require_no_body
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.delete("/v1/admin/fraud/blocks/<bucket>")
def delete_block(bucket: str) -> Response:
    from urllib.parse import unquote

    require_no_body(app, "DELETE takes no body")
    app_id = runtime.fraud_admin().app_of(query_parameter(app, "appId"), every=True)
    # REST APIs pass the path percent-encoded: "country%3AGB" is the bucket country:GB.
    runtime.fraud_admin().unblock(app_id, unquote(bucket))
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
