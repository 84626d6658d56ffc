"""GET /.well-known/jwks.json: the public keys that verify this service's tokens."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import runtime
from otp_core.adapters.kms import KmsPublicKeys
from otp_core.http import Response, json_response, make_resolver
from otp_core.jwks import build_jwks
from otp_core.observability import logger, metrics, tracer

app = make_resolver()
# Keys change only with a deployment, so caches in front of the API may keep the set for five minutes.
CACHE_HEADERS = {"Cache-Control": "public, max-age=300"}


@cache
def key_set() -> dict[str, list[dict[str, str]]]:
    """Built once per instance: public keys are immutable, and this saves a KMS call per request."""
    settings = runtime.settings()
    key_ids = dict.fromkeys((settings.signing_key_id, *settings.retired_signing_key_ids))
    return build_jwks(KmsPublicKeys(runtime.client("kms")), key_ids)


@app.get("/.well-known/jwks.json")
def jwks() -> Response:
    return json_response(200, key_set(), headers=CACHE_HEADERS)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
