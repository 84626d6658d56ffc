"""POST /v1/client/sms/verify: check the code; success returns a CHALLENGE_SUCCEEDED client token."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, json_response, make_resolver, parse_body
from otp_core.models import VerifyChallengeRequest
from otp_core.observability import logger, metrics, tracer

# Browsers at the app's allowedOrigins may read the answers (otp_core.cors).
app = make_resolver(cors=runtime.client_origins)


@app.post("/v1/client/sms/verify")
def client_verify() -> Response:
    authorization = app.current_event.headers.get("Authorization")
    app_id, policy = runtime.client_app(authorization)
    flows = runtime.client_flows(app_id)
    claims = flows.authenticate(authorization, policy)
    request = parse_body(app, VerifyChallengeRequest)
    return json_response(200, replies.client_verify_result(flows.verify(claims, request.code, policy)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
