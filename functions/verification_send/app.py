"""POST /v1/verification/sms/send: a signed-in user (customer IdP token) asks for a code to a number."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, json_response, make_resolver, parse_body, source_ip
from otp_core.models import PhoneSendRequest
from otp_core.observability import logger, metrics, tracer

app = make_resolver()


@app.post("/v1/verification/sms/send")
def verification_send() -> Response:
    app_id, policy, subject = runtime.signed_in_user(app.current_event.headers.get("Authorization"))
    request = parse_body(app, PhoneSendRequest)
    sent = runtime.phone_verification(app_id).send(
        subject,
        request.phone_number,
        policy,
        message=request.message,
        sender_id=request.sender_id,
        ip_address=source_ip(app),
    )
    return json_response(202, replies.phone_sent(sent))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
