"""POST /v1/challenges/{challengeId}/claim: attribute a verified sign-in to a user."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.http import Response, caller_app, json_response, make_resolver, parse_body
from otp_core.models import ClaimChallengeRequest
from otp_core.observability import logger, metrics, tracer
from otp_core.records import DEFAULT_APP
from otp_core.service import ChallengeRecords

app = make_resolver()


def service(app_id: str = DEFAULT_APP) -> ChallengeRecords:
    return runtime.challenge_records(app_id)


@app.post("/v1/challenges/<challengeId>/claim")
def claim_challenge(challengeId: str) -> Response:  # noqa: N803 - the contract's path parameter
    request = parse_body(app, ClaimChallengeRequest)
    app_id = caller_app(app)
    runtime.policy(app_id)  # a deleted app's keys are refused at once, not only after the authorizer's cache
    claimed = service(app_id).claim(challengeId, request.user_id)
    return json_response(200, replies.claim_result(claimed, request.user_id))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
