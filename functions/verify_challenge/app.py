"""POST /v1/challenges/{challengeId}/verify: check a code and issue a verification token."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, caller_app, json_response, make_resolver, parse_body
from otp_core.models import VerifyChallengeRequest
from otp_core.observability import logger, metrics, tracer
from otp_core.records import DEFAULT_APP
from otp_core.service import ChallengeVerifier

app = make_resolver()


def service(app_id: str = DEFAULT_APP) -> ChallengeVerifier:
    return runtime.challenge_verifier(app_id)


@app.post("/v1/challenges/<challengeId>/verify")
def verify_challenge(challengeId: str) -> Response:  # noqa: N803 - the contract's path parameter
    request = parse_body(app, VerifyChallengeRequest)
    app_id = caller_app(app)
    return json_response(
        200, replies.verify_result(service(app_id).verify(challengeId, request.code, runtime.policy(app_id)))
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
