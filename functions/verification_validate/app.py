"""POST /v1/verification/sms/validate: check the passcode; success enrolls the number for the signed-in user."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, json_response, make_resolver, parse_body
from otp_core.models import PhoneValidateRequest
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.post("/v1/verification/sms/validate")
def verification_validate() -> Response:
    app_id, policy, subject = runtime.signed_in_user(app.current_event.headers.get("Authorization"))
    request = parse_body(app, PhoneValidateRequest)
    check = runtime.phone_verification(app_id).validate(subject, request.phone_number, request.passcode, policy)
    return json_response(200, replies.phone_validate_result(check))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
