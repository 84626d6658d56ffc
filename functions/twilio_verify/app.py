"""The Twilio Verify v2 facade under /twilio/v2: one function for its four routes.

- ``POST /twilio/v2/Services/{ServiceSid}/Verifications``: start a verification (or send the pending one's
  code again);
- ``GET`` and ``POST /twilio/v2/Services/{ServiceSid}/Verifications/{Sid}``: fetch one, cancel one;
- ``POST /twilio/v2/Services/{ServiceSid}/VerificationCheck``: check a code.

The routes have no API Gateway authorizer: twilio-python sends HTTP Basic (the app's account SID and one of its
API keys), which the Bearer key authorizer cannot read, so this function checks it (otp_core.facades.twilio).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import runtime
from otp_core.app_admin import KEY_CACHE_SECONDS
from otp_core.caching import TtlCache
from otp_core.errors import InvalidRequestError
from otp_core.facades.twilio import (
    Caller,
    TwilioAnswer,
    TwilioCredentials,
    TwilioVerify,
    invalid,
    parse_form,
    serve,
)
from otp_core.http import JSON, Response, make_resolver, public_base_url, request_text
from otp_core.observability import logger, metrics, tracer

app = make_resolver()
# Which app a Service SID's digits name (apps never change their SIDs, and a SID is never reused): one read per
# SID per 20 seconds, misses included, like the key lookups.
_SIDS = TtlCache(KEY_CACHE_SECONDS, size=1024)


def _app_of_sid(digits: str) -> str | None:
    found: str | None = _SIDS.get(digits, lambda: runtime.app_store().app_of_sid(digits))
    return found


def facade(app_id: str) -> TwilioVerify:
    """The facade over one app's use cases (each built once per cold start and app by otp_core.runtime)."""
    codes = runtime.code_book()
    return TwilioVerify(
        runtime.challenge_starter(app_id),
        runtime.code_checker(app_id),
        runtime.challenge_records(app_id),
        runtime.identities(app_id),
        lambda to: codes.subject_key("twilio-verify", to),
    )


def _caller(service_sid: str) -> Caller:
    credentials = TwilioCredentials(_app_of_sid, runtime.key_authority().identify, runtime.policy)
    base_url = public_base_url(app, runtime.settings().public_base_url) or ""
    return credentials.authenticate(app.current_event.headers.get("Authorization"), service_sid, base_url)


def _form() -> dict[str, str]:
    try:
        text = request_text(app)
    except InvalidRequestError:  # a base64 body that does not decode, or bytes that are not UTF-8
        raise invalid("body", "not a valid UTF-8 form-encoded body") from None
    return parse_form(text, app.current_event.headers.get("Content-Type"))


def _reply(answer: TwilioAnswer) -> Response:
    return Response(
        status_code=answer.status,
        body=json.dumps(answer.body),
        content_type=JSON,
        headers={"Cache-Control": "no-store", **answer.headers},
    )


@app.post("/twilio/v2/Services/<service_sid>/Verifications")
def create_verification(service_sid: str) -> Response:
    def run() -> TwilioAnswer:
        caller = _caller(service_sid)
        return facade(caller.app_id).create(caller, _form())

    return _reply(serve(run))


@app.get("/twilio/v2/Services/<service_sid>/Verifications/<sid>")
def fetch_verification(service_sid: str, sid: str) -> Response:
    def run() -> TwilioAnswer:
        caller = _caller(service_sid)
        return facade(caller.app_id).fetch(caller, sid)

    return _reply(serve(run))


@app.post("/twilio/v2/Services/<service_sid>/Verifications/<sid>")
def update_verification(service_sid: str, sid: str) -> Response:
    def run() -> TwilioAnswer:
        caller = _caller(service_sid)
        return facade(caller.app_id).update(caller, sid, _form())

    return _reply(serve(run))


@app.post("/twilio/v2/Services/<service_sid>/VerificationCheck")
def check_verification(service_sid: str) -> Response:
    def run() -> TwilioAnswer:
        caller = _caller(service_sid)
        return facade(caller.app_id).check(caller, _form())

    return _reply(serve(run))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
