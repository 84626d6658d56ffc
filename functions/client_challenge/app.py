"""POST /v1/client/sms/challenge: send or resend a code to the client token user's enrolled number."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, json_response, make_resolver, require_no_body, source_ip
from otp_core.observability import logger, metrics, tracer

# Browsers at the app's allowedOrigins may read the answers (otp_core.cors).
app = make_resolver(cors=runtime.client_origins)


@app.post("/v1/client/sms/challenge")
def client_challenge() -> Response:
    authorization = app.current_event.headers.get("Authorization")
    app_id, policy = runtime.client_app(authorization)
    flows = runtime.client_flows(app_id)
    claims = flows.authenticate(authorization, policy)
    require_no_body(app, "this endpoint takes no request body")
    sent = flows.challenge(claims, policy, source_ip(app))
    return json_response(200, replies.client_challenge_sent(sent))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
