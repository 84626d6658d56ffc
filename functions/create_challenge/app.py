"""POST /v1/challenges: start an SMS challenge."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import replies, runtime
from otp_core.errors import ConflictError, DependencyError, InvalidRequestError
from otp_core.http import Response, caller_app, caller_key, json_response, make_resolver, parse_body
from otp_core.models import CreateChallengeRequest
from otp_core.observability import logger, metrics, tracer
from otp_core.records import DEFAULT_APP
from otp_core.service import ChallengeStarter

app = make_resolver()
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def service(app_id: str = DEFAULT_APP) -> ChallengeStarter:
    return runtime.challenge_starter(app_id)


def create(request: dict[str, Any]) -> dict[str, Any]:
    body = CreateChallengeRequest.model_validate(request["body"])
    app_id = request["app"]
    created = service(app_id).create(
        runtime.policy(app_id),
        action=body.action,
        phone_number=body.phone_number,
        user_id=body.user_id,
        scope=body.scope,
        message=body.message,
        sender_id=body.sender_id,
        locale=body.locale,
        ip_address=body.ip_address,
    )
    return replies.challenge_sent(created).to_json()


@cache
def idempotency() -> Any:
    """Replays within an hour return the first answer; the key is scoped to the API key that sent it.

    Powertools' idempotency (and the boto3 its persistence layer imports) loads with the first request that
    carries an Idempotency-Key, not with every cold start.
    """
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(
        event_key_jmespath="[app, principal, key]",
        payload_validation_jmespath="body",
        expires_after_seconds=3600,
        raise_on_no_idempotency_key=True,
    )


@cache
def create_once() -> Any:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function

    store = DynamoDBPersistenceLayer(
        table_name=runtime.settings().table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value="IDEMPOTENCY#create_challenge",
        expiry_attr="ttl",
        boto3_client=runtime.client("dynamodb"),
    )
    return idempotent_function(data_keyword_argument="request", persistence_store=store, config=idempotency())(create)


@app.post("/v1/challenges")
def create_challenge() -> Response:
    body = parse_body(app, CreateChallengeRequest).model_dump(mode="json", by_alias=True, exclude_none=True)
    key = app.current_event.headers.get("Idempotency-Key")
    app_id = caller_app(app)
    if key is None:
        return json_response(201, create({"app": app_id, "body": body}))
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidRequestError("Idempotency-Key must be 1-255 visible ASCII characters")
    return json_response(201, _replayable(app_id, body, key))


def _replayable(app_id: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    idempotency().register_lambda_context(app.lambda_context)
    try:
        # The key is scoped to the API key that sent it (and its app): two keys may use the same Idempotency-Key.
        request = {"app": app_id, "principal": caller_key(app), "key": key, "body": body}
        result: dict[str, Any] = create_once()(request=request)
    except IdempotencyValidationError as exc:
        raise InvalidRequestError("this Idempotency-Key was used with a different request body") from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise ConflictError("a request with this Idempotency-Key is still in progress") from exc
    except IdempotencyPersistenceLayerError as exc:
        raise DependencyError("the challenge store is unavailable; retry later") from exc
    return result


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
