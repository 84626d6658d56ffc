"""GET /v1/openapi.json: the OpenAPI 3.1 document of the API, generated from the wire models."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core.http import JSON, Response, make_resolver
from otp_core.observability import logger, metrics, tracer

app = make_resolver()
# The document changes only with a deployment, so caches in front of the API may keep it for five minutes.
CACHE_HEADERS = {"Cache-Control": "public, max-age=300"}


@cache
def document_text() -> str:
    """Built on the first request of an instance, not at its cold start: it loads every area's models."""
    from otp_core.openapi import document

    return json.dumps(document(), separators=(",", ":"))


@app.get("/v1/openapi.json")
def openapi() -> Response:
    return Response(status_code=200, body=document_text(), content_type=JSON, headers=dict(CACHE_HEADERS))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
