"""POST /v1/delivery-status/{provider}: a provider's delivery report, authenticated by the provider's signature.

Public route (no API key): Twilio's status callback (form-encoded, ``X-Twilio-Signature``) and the webhook
provider's callback (JSON, ``X-Otp-Timestamp`` + ``X-Otp-Signature``). A verified report of ``delivered`` or
``failed`` is recorded on the challenge; intermediate statuses are acknowledged and ignored.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from otp_core import runtime
from otp_core.adapters.circuit import record_delivery
from otp_core.errors import DependencyError, NotFoundError, UnauthorizedError
from otp_core.http import make_resolver, parse_body
from otp_core.observability import logger, metrics, tracer
from otp_core.providers.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    twilio_callback_url,
    verify_twilio,
    verify_webhook,
)

app = make_resolver()
_CHALLENGE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# Twilio's final statuses; the others (queued, sending, sent, ...) are progress reports.
TWILIO_OUTCOMES = {"delivered": "delivered", "read": "delivered", "undelivered": "failed", "failed": "failed"}
_BAD_SIGNATURE = "the request signature is invalid"


class WebhookReport(BaseModel):
    """The webhook provider's delivery report (see otp_core.providers.webhook)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    challenge_id: str = Field(alias="challengeId", pattern=_CHALLENGE_ID.pattern)
    message_id: str | None = Field(default=None, alias="messageId", min_length=1, max_length=256)
    status: Literal["delivered", "failed"]


@app.post("/v1/delivery-status/<provider>")
def delivery_status(provider: str) -> Response[str]:
    if provider == "twilio":
        return _twilio()
    if provider == "webhook":
        return _webhook()
    raise NotFoundError("no such route")


def _twilio() -> Response[str]:
    auth_token = _credential("twilio", "authToken")
    event = app.current_event
    challenge_id = _single_query_value("challengeId")
    params = parse_qsl(event.decoded_body or "", keep_blank_values=True)
    signature = event.headers.get(TWILIO_SIGNATURE_HEADER)
    if not verify_twilio(auth_token, url=_twilio_url(challenge_id), params=params, signature=signature):
        raise UnauthorizedError(_BAD_SIGNATURE)

    form = dict(params)
    outcome = TWILIO_OUTCOMES.get(form.get("MessageStatus", ""))
    if outcome is None or not _CHALLENGE_ID.fullmatch(challenge_id):
        return _accepted()
    return _record(challenge_id, "twilio", form.get("MessageSid") or None, outcome)


def _twilio_url(challenge_id: str) -> str:
    """The URL Twilio signed: the configured public base, else the one this request came in on."""
    base = runtime.settings().delivery_callback_base_url
    if base:
        return twilio_callback_url(base, challenge_id)
    event = app.current_event
    host = event.headers.get("Host", "")
    # requestContext.path is the path the client called (with the stage or custom-domain base path).
    path = event.request_context.path or event.path
    return f"https://{host}{path}?{urlencode({'challengeId': challenge_id})}"


def _webhook() -> Response[str]:
    secret = _credential("webhook", "secret")
    event = app.current_event
    body = (event.decoded_body or "").encode("utf-8")
    valid = verify_webhook(
        secret,
        timestamp=event.headers.get(TIMESTAMP_HEADER),
        signature=event.headers.get(SIGNATURE_HEADER),
        body=body,
        now=runtime.clock().now(),
        tolerance_seconds=runtime.settings().delivery_callback_tolerance_seconds,
    )
    if not valid:
        raise UnauthorizedError(_BAD_SIGNATURE)
    report = parse_body(app, WebhookReport)
    return _record(report.challenge_id, "webhook", report.message_id, report.status)


def _record(challenge_id: str, provider: str, message_id: str | None, status: str) -> Response[str]:
    settings = runtime.settings()
    now = runtime.clock().now()
    written = record_delivery(
        runtime.client("dynamodb"), settings.table_name, challenge_id, provider, message_id, status, now, callback=True
    )
    metrics.add_metric(name="SmsDelivered" if status == "delivered" else "SmsUndelivered", unit="Count", value=1)
    logger.info("delivery status", provider=provider, challenge_id=challenge_id, status=status, recorded=written)
    # Unknown or superseded messages are acknowledged too: a provider retrying them would change nothing.
    return _accepted()


def _accepted() -> Response[str]:
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


def _single_query_value(name: str) -> str:
    values = app.current_event.multi_value_query_string_parameters or {}
    if set(values) != {name} or len(values[name]) != 1:
        # Only URLs this service generated are signed; anything else cannot verify.
        raise UnauthorizedError(_BAD_SIGNATURE)
    return str(values[name][0])


def _credential(provider: str, key: str) -> str:
    """One field of the provider secret (cached by the Powertools parameters utility in runtime.secret)."""
    secret_id = runtime.settings().sms_provider_secret_id
    if not secret_id:
        raise NotFoundError("no such route")
    try:
        document = json.loads(runtime.secret(secret_id))
    except ValueError as exc:
        raise DependencyError("delivery status is unavailable; retry later") from exc
    section = document.get(provider) if isinstance(document, dict) else None
    value = section.get(key) if isinstance(section, dict) else None
    if not isinstance(value, str) or not value:
        # A provider without credentials in this stack has no callbacks to receive.
        raise NotFoundError("no such route")
    return value


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
