"""POST /v1/track: decide ALLOW, CHALLENGE_REQUIRED or BLOCK for a user's action; issue a client token."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, caller_app, json_response, make_resolver, parse_body, public_base_url
from otp_core.models import TrackRequest
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.post("/v1/track")
def track() -> Response:
    request = parse_body(app, TrackRequest)
    attributes = request.attributes
    app_id = caller_app(app)
    tracked = runtime.tracker(app_id).track(
        runtime.policy(app_id),
        user_id=request.user_id,
        action=request.action,
        attributes=attributes.model_dump(by_alias=True, exclude_none=True),
        device_id=attributes.device_id,
        phone_number=attributes.phone_number,
        redirect_url=attributes.redirect_url,
    )
    base_url = public_base_url(app, runtime.settings().public_base_url)
    return json_response(200, replies.track_result(tracked, base_url))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
