"""Key authorizer (API Gateway TOKEN authorizer) of the server and the operator endpoints.

The template names this function twice: as ``ApiKeyAuthorizer`` (the default, every server route) and as
``AdminKeyAuthorizer`` (the ``/v1/admin`` routes). API Gateway caches each authorizer's answer per token for
30 seconds, and this function caches its key lookups for 20 (otp_core.app_admin), so a revoked key or a
deleted app's keys are refused within 60 seconds. Each policy covers every route that authorizer can see:

- an app's API key: Allow on the stage, with an explicit Deny on ``/v1/admin``; on an admin route, the Deny
  alone (API Gateway answers 403 ``ACCESS_DENIED``, the contract's ``FORBIDDEN``). The context carries the
  key's app (``appId``) and key (``keyId``) from the key's stored grant, never from the request;
- the admin key: Allow on ``/v1/admin`` only; on any other route it is refused like an unknown key (401);
- anything else: 401.

A key is looked up by its SHA-256 digest, so the lookup's time says nothing about how close a guess is; the
admin key is compared by digest in constant time on every call, whatever the route.
"""

from __future__ import annotations

from typing import Any, Final, NoReturn

from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import runtime
from otp_core.apps import KeyGrant
from otp_core.observability import logger, metrics

PRINCIPAL: Final = "api-key"
ADMIN_PRINCIPAL: Final = "admin-key"
ADMIN_PATH: Final = "v1/admin"


def key_kind(presented: str) -> str | KeyGrant | None:
    """``"admin"`` for the admin key, the grant (app and key ID) of a live app key, None for anything else."""
    return runtime.key_authority().identify(presented)


def _stage_arn(method_arn: str) -> str:
    # arn:aws:execute-api:region:account:apiId/stage/METHOD/path -> arn:aws:execute-api:region:account:apiId/stage
    return "/".join(method_arn.split("/")[:2])


def is_admin_route(method_arn: str) -> bool:
    """Whether the request's path (after ``stage/METHOD/``) is ``v1/admin`` or below it."""
    path = "/".join(method_arn.split("/")[3:])
    return path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/")


def _statement(effect: str, resource: str) -> dict[str, str]:
    return {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}


def _answer(principal: str, context: dict[str, str], statements: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {"Version": "2012-10-17", "Statement": statements},
        "context": context,
    }


def _refuse(reason: str) -> NoReturn:
    metrics.add_metric(name="AuthorizationDenied", unit="Count", value=1)
    logger.info("api key rejected", reason=reason)
    # API Gateway answers 401 for exactly this message.
    raise Exception("Unauthorized")  # noqa: TRY002


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    method_arn = str(event["methodArn"])
    token = str(event.get("authorizationToken") or "")
    scheme, _, key = token.partition(" ")
    kind = key_kind(key.strip()) if scheme == "Bearer" and key.strip() else None
    stage = _stage_arn(method_arn)
    admin_routes = f"{stage}/*/{ADMIN_PATH}/*"
    if is_admin_route(method_arn):
        if kind == "admin":
            return _answer(ADMIN_PRINCIPAL, {"keyId": "admin"}, [_statement("Allow", admin_routes)])
        if isinstance(kind, KeyGrant):
            metrics.add_metric(name="AuthorizationForbidden", unit="Count", value=1)
            logger.info("api key refused on an admin route", app_id=kind.app_id, key_id=kind.key_id)
            return _answer(PRINCIPAL, _grant_context(kind), [_statement("Deny", admin_routes)])
        _refuse("unknown key")
    if not isinstance(kind, KeyGrant):
        # The admin key opens only the admin routes; elsewhere it is no credential at all.
        _refuse("admin key on a server route" if kind == "admin" else "unknown key")
    # The Deny keeps the cached policy from ever reaching an admin route with an app key.
    return _answer(
        PRINCIPAL, _grant_context(kind), [_statement("Allow", f"{stage}/*"), _statement("Deny", admin_routes)]
    )


def _grant_context(grant: KeyGrant) -> dict[str, str]:
    return {"appId": grant.app_id, "keyId": grant.key_id}
