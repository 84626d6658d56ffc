"""API key authorizer (API Gateway TOKEN authorizer) for the server endpoints.

The key is compared by its SHA-256 digest in constant time, so neither its length nor its content leaks
through timing. API Gateway caches an Allow for five minutes per token, so the policy covers every route.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import runtime
from otp_core.observability import logger, metrics

PRINCIPAL = "api-key"


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def is_valid_key(presented: str) -> bool:
    expected = _digest(runtime.secret(runtime.settings().api_key_secret_id))
    return hmac.compare_digest(_digest(presented), expected)


def _api_arn(method_arn: str) -> str:
    # arn:aws:execute-api:region:account:apiId/stage/METHOD/path -> every method and path of the stage
    parts = method_arn.split("/")
    return "/".join(parts[:2]) + "/*" if len(parts) >= 2 else method_arn


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    token = str(event.get("authorizationToken") or "")
    scheme, _, key = token.partition(" ")
    if scheme != "Bearer" or not key or not is_valid_key(key.strip()):
        metrics.add_metric(name="AuthorizationDenied", unit="Count", value=1)
        logger.info("api key rejected")
        # API Gateway answers 401 for exactly this message.
        raise Exception("Unauthorized")  # noqa: TRY002
    return {
        "principalId": PRINCIPAL,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": _api_arn(event["methodArn"])}
            ],
        },
        "context": {"keyId": "default"},
    }
