"""POST /v1/challenges/{challengeId}/resend: send the same code again."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, caller_app, json_response, make_resolver, require_no_body
from otp_core.observability import logger, metrics, tracer
from otp_core.records import DEFAULT_APP
from otp_core.service import ChallengeStarter

app = make_resolver()


def service(app_id: str = DEFAULT_APP) -> ChallengeStarter:
    return runtime.challenge_starter(app_id)


@app.post("/v1/challenges/<challengeId>/resend")
def resend_challenge(challengeId: str) -> Response:  # noqa: N803 - the contract's path parameter
    require_no_body(app, "resend takes no request body")
    app_id = caller_app(app)
    return json_response(200, replies.challenge_sent(service(app_id).resend(challengeId, runtime.policy(app_id))))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
