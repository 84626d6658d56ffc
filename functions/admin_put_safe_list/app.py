"""PUT /v1/admin/fraud/safe-list?appId=: replace an app's safe list (numbers and prefixes never tripped)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.errors import FieldError, InvalidRequestError
from otp_core.http import Response, json_response, make_resolver, parse_body, query_parameter
from otp_core.models import SafeListRequest
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.put("/v1/admin/fraud/safe-list")
def put_safe_list() -> Response:
    request = parse_body(app, SafeListRequest)
    named = query_parameter(app, "appId")
    if named is not None and request.app_id is not None and named != request.app_id:
        raise InvalidRequestError("two different apps", errors=[FieldError("appId", "query and body disagree")])
    app_id = runtime.fraud_admin().app_of(named if named is not None else request.app_id, every=False)
    entries = runtime.fraud_admin().replace_safe_list(app_id, request.entries)
    return json_response(200, replies.safe_list(entries), headers={"Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
