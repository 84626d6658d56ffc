"""POST /v1/delivery-status/{provider}: a provider's delivery report, authenticated by the provider's signature.

Public route (no API key): the status callbacks of Twilio, Vonage, MessageMedia and the webhook provider.
``otp_core.sms.reports`` verifies the signature, records a ``delivered`` or ``failed`` outcome and ignores
progress reports; every read of the unauthenticated request is total, so hostile input answers 401 (or 400 when
signed), never 500.

``sns_handler`` is the same folder's second entry point: DeliveryEventsFunction, subscribed to the topic End
User Messaging's configuration set publishes its delivery events to (only when ``eum`` is routed).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import runtime
from otp_core.http import Response, make_resolver
from otp_core.observability import logger, metrics, tracer
from otp_core.sms.callbacks import CallbackRequest

app = make_resolver()


@app.post("/v1/delivery-status/<provider>")
def delivery_status(provider: str) -> Response:
    runtime.delivery_reports().receive(provider, CallbackRequest.from_event(app.current_event.raw_event))
    # Unknown or superseded messages are acknowledged too: a provider retrying them would change nothing.
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def sns_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """End User Messaging's delivery events, as SNS invokes the function with them.

    Raises only when the store or SNS's signing certificate is unavailable, so that the event is delivered again.
    """
    from otp_core.errors import InvalidRequestError
    from otp_core.sms.sns_events import sns_records

    try:
        records = sns_records(event)
    except InvalidRequestError:
        records = None
    if records is None:
        logger.warning("not an SNS event")
        return {"refused": 1}
    return runtime.eum_receipts().receive(records)
