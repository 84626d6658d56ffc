"""The Authsignal facade's client routes (``/authsignal/v1/client/...``), for Authsignal's web and mobile SDKs.

``POST /client/user-authenticators/sms``, ``/client/challenge/sms`` and ``/client/verify/sms`` with
``Authorization: Bearer <client token>`` (the token of a track), mapped onto the native client flows
(otp_core.facades.authsignal), with their CORS preflights. The answers are readable from the token's app's
``allowedOrigins`` (a refused token's from every live app's), as on the native client routes; a refused token is
Authsignal's ``expired_token``, so the browser SDK calls ``onTokenExpired``. Other factors' client routes answer a
400 that names the factor.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import cors, runtime
from otp_core.facades import authsignal
from otp_core.facades.authsignal import PREFIX
from otp_core.http import Response, make_resolver, source_ip
from otp_core.observability import logger, metrics, tracer

# Browsers at the app's allowedOrigins may read the answers (otp_core.cors).
app = make_resolver(cors=runtime.client_origins)
# Preflights carry no token: allowed for every live app's origins, answered with no CORS headers added.
preflights = make_resolver()

CLIENT = f"{PREFIX}/client"
ROUTES = (f"{CLIENT}/user-authenticators/sms", f"{CLIENT}/challenge/sms", f"{CLIENT}/verify/sms")
_DEPTH = 5  # the deepest client route of another factor: /client/user-authenticators/passkey/registration-options/web


def session() -> authsignal.ClientSession:
    return authsignal.client_session(app.current_event.headers.get("Authorization"))


@app.post(ROUTES[0])
def enroll() -> Response:
    who = session()
    return authsignal.answer(authsignal.client_enroll(who, authsignal.request_body(app), source_ip(app)))


@app.post(ROUTES[1])
def challenge() -> Response:
    who = session()
    return authsignal.answer(authsignal.client_challenge(who, authsignal.request_body(app), source_ip(app)))


@app.post(ROUTES[2])
def verify() -> Response:
    who = session()
    return authsignal.answer(authsignal.client_verify(who, authsignal.request_body(app)))


def other_factor(**segments: str) -> Response:
    raise authsignal.unsupported_client_route(segments.values())


# Every other client route (another factor's): its rule covers the SMS routes too, which match first.
RULES = tuple(CLIENT + "".join(f"/<s{n}>" for n in range(depth)) for depth in range(1, _DEPTH + 1))
for _rule in RULES:
    for _method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        app.route(_method, _rule)(other_factor)


def preflight(**segments: str) -> Response:
    return cors.preflight(preflights.current_event.headers, runtime.apps().allowed_origins())


# Another factor's route passes its preflight too, so a browser reads its 400 (which names the factor) instead of
# failing with a network error.
for _rule in RULES:
    preflights.route("OPTIONS", _rule)(preflight)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    router = preflights if str(event.get("httpMethod") or "").upper() == "OPTIONS" else app
    return authsignal.authsignal_proxy(router.resolve(event, context), client=True)
