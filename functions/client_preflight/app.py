"""OPTIONS /v1/client/sms/{enroll,challenge,verify}: the CORS preflights of the client routes.

A preflight carries no token, so it names no app: it is allowed for the ``allowedOrigins`` of every live app
(see :mod:`otp_core.cors`; the answer to the request itself is readable only from the token's app's origins).
One function answers the three routes' preflights, so the client functions stay as small as they are.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import cors, runtime
from otp_core.http import Response, make_resolver
from otp_core.observability import logger, metrics, tracer

app = make_resolver()
ROUTES = ("/v1/client/sms/enroll", "/v1/client/sms/challenge", "/v1/client/sms/verify")


def preflight() -> Response:
    return cors.preflight(app.current_event.headers, runtime.apps().allowed_origins())


for _route in ROUTES:
    app.route("OPTIONS", _route)(preflight)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
