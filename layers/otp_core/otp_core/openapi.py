"""The API description: an OpenAPI 3.1 document of every native route, built from the wire models.

The route table below says, per route, its credential, its body and answer models (by name in
``otp_core.models``) and the error statuses the contract lets it answer; :func:`document` turns it into the
document with pydantic's JSON schemas of those models. Answers that no model describes (the JWKS, health, this
document, a provider's delivery report) have small schemas written here.

Only the openapi function imports this module, and the models are loaded when the document is built (on that
function's first request), so no other function pays for it at cold start.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Final

TITLE: Final = "SMS OTP"
VERSION: Final = "1.1"  # the contract's version (docs/api.md), not the package's
_SCHEMAS: Final = "#/components/schemas/"
_RESPONSES: Final = "#/components/responses/"

# The four bearer credentials of the contract's Authentication section.
SECURITY_SCHEMES: Final[dict[str, dict[str, str]]] = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API secret key of the app (server endpoints: /v1/challenges, /v1/track, /v1/validate, "
        "/v1/users).",
    },
    "clientToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A client token this service issued (the `token` of POST /v1/track, or the "
        "CHALLENGE_SUCCEEDED token of a client verify).",
    },
    "userAccessToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token of the signed-in user from the customer's own identity provider, verified "
        "against its JWKS (issuer and audience of an app's idpIssuer and idpAudience).",
    },
    "adminKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operators' admin key (stack output AdminKeySecretArn). An app's API key on these routes "
        "answers 403; the admin key on any other route answers 401.",
    },
}


@dataclass(frozen=True)
class Route:
    """One route of the contract, as the document describes it.

    ``request`` and ``response`` name a model of ``otp_core.models`` or a schema of :data:`HAND_WRITTEN`;
    ``response`` None is an answer without a body (204); ``media_type`` is the answer's type (a page or a script
    of the stack's own static routes names its type and a hand-written string schema). ``errors`` are the
    statuses the route itself can answer beyond those of its credential (:data:`CREDENTIAL_ERRORS`) and those
    every route can (:data:`EVERY_ROUTE`).
    """

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    security: str | None
    success: int
    response: str | None
    request: str | None = None
    request_required: bool = True
    errors: tuple[int, ...] = ()
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    media_type: str = "application/json"


# API Gateway's stage throttling (429 with Retry-After) and its answer when a function cannot run (503) reach
# every route.
EVERY_ROUTE: Final = (429, 503)
# What the credential's check answers: 401 for a missing or invalid one, and 403 for an app's API key on an admin
# route.
CREDENTIAL_ERRORS: Final[dict[str | None, tuple[int, ...]]] = {
    None: (),
    "apiKey": (401,),
    "clientToken": (401,),
    "userAccessToken": (401,),
    "adminKey": (401, 403),
}

_CHALLENGES, _MFA, _USERS, _CLIENT = "Challenges", "Adaptive MFA", "Users and authenticators", "Client endpoints"
_SIGNED_IN, _PUBLIC = "Phone verification for signed-in users", "Public"
_APPS, _FRAUD = "Apps (admin)", "Fraud guard (admin)"

ROUTES: Final[tuple[Route, ...]] = (
    Route(
        "POST",
        "/v1/challenges",
        "createChallenge",
        "Start an SMS challenge (sign-in, enrollment, phone update)",
        _CHALLENGES,
        "apiKey",
        201,
        "ChallengeSent",
        "CreateChallengeRequest",
        errors=(400, 403, 409, 502),
        headers=("Idempotency-Key",),
    ),
    Route(
        "POST",
        "/v1/challenges/{challengeId}/verify",
        "verifyChallenge",
        "Check a code",
        _CHALLENGES,
        "apiKey",
        200,
        "VerifyResult",
        "VerifyChallengeRequest",
        errors=(400,),
    ),
    Route(
        "POST",
        "/v1/challenges/{challengeId}/resend",
        "resendChallenge",
        "Send the code again (no body)",
        _CHALLENGES,
        "apiKey",
        200,
        "ChallengeSent",
        errors=(400, 403, 409, 502),
    ),
    Route(
        "POST",
        "/v1/challenges/{challengeId}/claim",
        "claimChallenge",
        "Attribute a verified sign-in to a user",
        _CHALLENGES,
        "apiKey",
        200,
        "ClaimResult",
        "ClaimChallengeRequest",
        errors=(400, 409),
    ),
    Route(
        "GET",
        "/v1/challenges/{challengeId}",
        "getChallenge",
        "A challenge's state",
        _CHALLENGES,
        "apiKey",
        200,
        "ChallengeView",
        errors=(404,),
    ),
    Route(
        "POST",
        "/v1/track",
        "track",
        "Decide ALLOW, CHALLENGE_REQUIRED or BLOCK for a user's action and issue a client token",
        _MFA,
        "apiKey",
        200,
        "TrackResult",
        "TrackRequest",
        errors=(400,),
    ),
    Route(
        "POST",
        "/v1/validate",
        "validate",
        "Check a verification or client token (a success validates once)",
        _MFA,
        "apiKey",
        200,
        "ValidateResult",
        "ValidateRequest",
        errors=(400,),
    ),
    Route(
        "POST",
        "/v1/users/{userId}/authenticators",
        "enrollAuthenticator",
        "Enroll (or replace) an SMS number verified elsewhere",
        _USERS,
        "apiKey",
        201,
        "AuthenticatorView",
        "EnrollAuthenticatorRequest",
        errors=(400,),
    ),
    Route(
        "GET",
        "/v1/users/{userId}/authenticators",
        "listAuthenticators",
        "The user's authenticators",
        _USERS,
        "apiKey",
        200,
        "AuthenticatorList",
        errors=(400,),
    ),
    Route(
        "DELETE",
        "/v1/users/{userId}/authenticators/{authenticatorId}",
        "deleteAuthenticator",
        "Remove the user's SMS authenticator",
        _USERS,
        "apiKey",
        204,
        None,
        errors=(400, 404),
    ),
    Route(
        "POST",
        "/v1/client/sms/enroll",
        "clientEnroll",
        "Send a code to a new number for the token's user",
        _CLIENT,
        "clientToken",
        200,
        "ClientChallengeSent",
        "ClientEnrollRequest",
        errors=(400, 403, 502),
    ),
    Route(
        "POST",
        "/v1/client/sms/challenge",
        "clientChallenge",
        "Send (or resend) a code to the user's enrolled number (no body)",
        _CLIENT,
        "clientToken",
        200,
        "ClientChallengeSent",
        errors=(400, 403, 409, 502),
    ),
    Route(
        "POST",
        "/v1/client/sms/verify",
        "clientVerify",
        "Check the code; success returns a CHALLENGE_SUCCEEDED client token",
        _CLIENT,
        "clientToken",
        200,
        "ClientVerifyResult",
        "VerifyChallengeRequest",
        errors=(400, 403),
    ),
    *(
        Route(
            "OPTIONS",
            path,
            f"{name}Preflight",
            "The CORS preflight of a browser at one of the apps' allowedOrigins (no credentials are allowed)",
            _CLIENT,
            None,
            204,
            None,
            errors=(403,),
            headers=("Origin", "Access-Control-Request-Method"),
        )
        for name, path in (
            ("clientEnroll", "/v1/client/sms/enroll"),
            ("clientChallenge", "/v1/client/sms/challenge"),
            ("clientVerify", "/v1/client/sms/verify"),
        )
    ),
    Route(
        "POST",
        "/v1/verification/sms/send",
        "verificationSend",
        "Send a code to a number for the signed-in user",
        _SIGNED_IN,
        "userAccessToken",
        202,
        "PhoneSent",
        "PhoneSendRequest",
        errors=(400, 403, 502),
    ),
    Route(
        "POST",
        "/v1/verification/sms/validate",
        "verificationValidate",
        "Check the passcode; the number becomes the user's authenticator when they have none",
        _SIGNED_IN,
        "userAccessToken",
        200,
        "PhoneValidateResult",
        "PhoneValidateRequest",
        errors=(400,),
    ),
    Route(
        "POST",
        "/v1/delivery-status/{provider}",
        "deliveryStatus",
        "A provider's delivery report, authenticated by the provider's own signature",
        _PUBLIC,
        None,
        204,
        None,
        "DeliveryReport",
        errors=(400, 401, 404),
    ),
    Route(
        "GET",
        "/.well-known/jwks.json",
        "jwks",
        "The public keys that verify this service's tokens",
        _PUBLIC,
        None,
        200,
        "Jwks",
    ),
    Route("GET", "/v1/health", "health", "Liveness of the API", _PUBLIC, None, 200, "Health"),
    Route("GET", "/v1/openapi.json", "openApi", "This document", _PUBLIC, None, 200, "OpenApiDocument"),
    Route(
        "GET",
        "/v1/hosted/challenge",
        "hostedChallengePage",
        "The hosted challenge page (the client token goes in the URL fragment, #token=...)",
        _PUBLIC,
        None,
        200,
        "HostedPage",
        headers=("Accept-Language",),
        media_type="text/html",
    ),
    Route(
        "GET",
        "/v1/hosted/challenge.js",
        "hostedChallengeScript",
        "The hosted page's script",
        _PUBLIC,
        None,
        200,
        "HostedScript",
        media_type="text/javascript",
    ),
    Route(
        "GET",
        "/v1/hosted/challenge.css",
        "hostedChallengeStyle",
        "The hosted page's style sheet",
        _PUBLIC,
        None,
        200,
        "HostedStyle",
        media_type="text/css",
    ),
    Route(
        "GET",
        "/v1/hosted/sms-otp.js",
        "hostedBrowserClient",
        "The browser client (an ES module of the client endpoints)",
        _PUBLIC,
        None,
        200,
        "HostedScript",
        media_type="text/javascript",
    ),
    Route(
        "GET",
        "/v1/admin/fraud/blocks",
        "adminListBlocks",
        "The blocks in force for an app (its own and every app's)",
        _FRAUD,
        "adminKey",
        200,
        "BlockList",
        errors=(400, 404),
        query=("appIdOrEvery",),
    ),
    Route(
        "POST",
        "/v1/admin/fraud/blocks",
        "adminCreateBlock",
        "A manual block of a country or prefix, for one app or every app",
        _FRAUD,
        "adminKey",
        201,
        "BlockView",
        "BlockRequest",
        errors=(400, 404),
    ),
    Route(
        "DELETE",
        "/v1/admin/fraud/blocks/{bucket}",
        "adminDeleteBlock",
        "Lift a block",
        _FRAUD,
        "adminKey",
        204,
        None,
        errors=(400, 404),
        query=("appIdOrEvery",),
    ),
    Route(
        "GET",
        "/v1/admin/fraud/safe-list",
        "adminGetSafeList",
        "The numbers and prefixes a trip never blocks",
        _FRAUD,
        "adminKey",
        200,
        "SafeList",
        errors=(400, 404),
        query=("appId",),
    ),
    Route(
        "PUT",
        "/v1/admin/fraud/safe-list",
        "adminPutSafeList",
        "Replace an app's safe list",
        _FRAUD,
        "adminKey",
        200,
        "SafeList",
        "SafeListRequest",
        errors=(400, 404),
        query=("appId",),
    ),
    Route(
        "POST",
        "/v1/admin/apps",
        "adminCreateApp",
        "Create an app",
        _APPS,
        "adminKey",
        201,
        "AppView",
        "AppCreateRequest",
        errors=(400, 409),
    ),
    Route("GET", "/v1/admin/apps", "adminListApps", "Every live app", _APPS, "adminKey", 200, "AppList", errors=(400,)),
    Route(
        "GET",
        "/v1/admin/apps/{appId}",
        "adminGetApp",
        "One app's record",
        _APPS,
        "adminKey",
        200,
        "AppView",
        errors=(400, 404),
    ),
    Route(
        "PATCH",
        "/v1/admin/apps/{appId}",
        "adminUpdateApp",
        "Rename an app and change its settings key by key (null removes an override)",
        _APPS,
        "adminKey",
        200,
        "AppView",
        "AppPatchRequest",
        errors=(400, 404, 409),
    ),
    Route(
        "DELETE",
        "/v1/admin/apps/{appId}",
        "adminDeleteApp",
        "Delete an app (not default)",
        _APPS,
        "adminKey",
        204,
        None,
        errors=(400, 404, 409),
    ),
    Route(
        "POST",
        "/v1/admin/apps/{appId}/keys",
        "adminCreateKey",
        "A new API key of the app, its secret shown in this answer only",
        _APPS,
        "adminKey",
        201,
        "KeyCreated",
        "KeyCreateRequest",
        request_required=False,
        errors=(400, 404, 409),
    ),
    Route(
        "GET",
        "/v1/admin/apps/{appId}/keys",
        "adminListKeys",
        "The app's live keys, without secrets",
        _APPS,
        "adminKey",
        200,
        "KeyList",
        errors=(400, 404),
    ),
    Route(
        "DELETE",
        "/v1/admin/apps/{appId}/keys/{keyId}",
        "adminDeleteKey",
        "Revoke a key",
        _APPS,
        "adminKey",
        204,
        None,
        errors=(400, 404),
    ),
)

_FIELD_ERROR: Final = {
    "type": "object",
    "required": ["field", "message"],
    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
}
# Schemas of what no pydantic model describes: the RFC 9457 problem of every error (otp_core.errors.Problem, and
# the template's GatewayResponses), and the answers and bodies that handlers build without a model.
HAND_WRITTEN: Final[dict[str, dict[str, Any]]] = {
    "Problem": {
        "type": "object",
        "description": "An RFC 9457 problem document; `errors` names each invalid field of a validation failure.",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "description": "`about:blank` or a URI"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$", "examples": ["INVALID_REQUEST"]},
            "errors": {"type": "array", "items": {"$ref": _SCHEMAS + "FieldError"}},
        },
    },
    "FieldError": _FIELD_ERROR,
    # functions/jwks: otp_core.jwks.p256_jwk of every key that can still verify a live token.
    "Jwks": {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kty", "crv", "x", "y", "kid", "use", "alg"],
                    "properties": {
                        "kty": {"const": "EC"},
                        "crv": {"const": "P-256"},
                        "x": {"type": "string"},
                        "y": {"type": "string"},
                        "kid": {"type": "string"},
                        "use": {"const": "sig"},
                        "alg": {"const": "ES256"},
                    },
                },
            }
        },
    },
    # functions/health.
    "Health": {
        "type": "object",
        "required": ["status", "version"],
        "properties": {"status": {"const": "ok"}, "version": {"type": "string"}},
    },
    # functions/hosted_page.
    "HostedPage": {"type": "string", "description": "An HTML page, in the language Accept-Language prefers."},
    "HostedScript": {"type": "string", "description": "An ES module."},
    "HostedStyle": {"type": "string", "description": "A CSS style sheet."},
    "OpenApiDocument": {
        "type": "object",
        "description": "This OpenAPI 3.1 document.",
        "required": ["openapi", "info", "paths"],
        "properties": {"openapi": {"type": "string"}, "info": {"type": "object"}, "paths": {"type": "object"}},
    },
}
# functions/delivery_status: the provider's own format, checked against its signature (otp_core.sms.vendors).
_DELIVERY_REPORT: Final = {
    "application/x-www-form-urlencoded": {
        "schema": {
            "type": "object",
            "description": "Twilio's status callback (signed with X-Twilio-Signature) or Vonage's delivery receipt "
            "(signed with its sig parameter).",
            "additionalProperties": {"type": "string"},
        }
    },
    "application/json": {
        "schema": {
            "type": "object",
            "description": "The webhook provider's signed report, MessageMedia's delivery report (signed with "
            "X-MessageMedia-Signature) or Vonage's JSON delivery receipt.",
        },
    },
}
# Request bodies that are no model: the route's ``request`` names them here.
_HAND_WRITTEN_BODIES: Final = {"DeliveryReport": _DELIVERY_REPORT}

_APP_ID: Final = "[a-z0-9-]{1,64}"
_ANY_ID: Final = {"type": "string", "minLength": 1}
# Path parameters: (description, schema).
_PATH_PARAMETERS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "challengeId": ("The challenge's ID; unknown, malformed and another app's IDs behave alike.", _ANY_ID),
    "userId": (
        "The user's ID (1-128 characters, no control characters), percent-encoded.",
        {"type": "string", "minLength": 1, "maxLength": 128},
    ),
    "authenticatorId": ("The authenticator's ID.", _ANY_ID),
    "provider": ("The SMS provider that sends the report (`twilio`, `vonage`, `messagemedia`, `webhook`).", _ANY_ID),
    "bucket": (
        "The blocked bucket, percent-encoded.",
        {"type": "string", "pattern": "^(country:[A-Z]{2}|prefix:[0-9]{4,14})$"},
    ),
    "appId": ("The app's ID.", {"type": "string", "pattern": f"^{_APP_ID}$"}),
    "keyId": ("The key's ID.", _ANY_ID),
}
# Query parameters by the name a route's ``query`` gives them: the fraud routes' app, where the blocks' routes
# also take "*" (every app).
_QUERY_PARAMETERS: Final[dict[str, dict[str, Any]]] = {
    "appId": {
        "name": "appId",
        "in": "query",
        "required": False,
        "description": "The app; omitted (or empty) means `default`.",
        "schema": {"type": "string", "pattern": f"^({_APP_ID})?$"},
    },
    "appIdOrEvery": {
        "name": "appId",
        "in": "query",
        "required": False,
        "description": 'The app; omitted (or empty) means `default`, and `"*"` every app.',
        "schema": {"type": "string", "pattern": f"^(\\*|{_APP_ID})?$"},
    },
}
_HEADER_PARAMETERS: Final[dict[str, dict[str, Any]]] = {
    "Idempotency-Key": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "A retried request with the same key (and body) returns the first answer without a second "
        "SMS, for an hour; scoped to the API key.",
        "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
    },
    "Origin": {
        "name": "Origin",
        "in": "header",
        "required": False,
        "description": "The browser page's origin; a preflight is allowed for an origin of some live app's "
        "allowedOrigins, and the request's answer is readable from the origins of its token's app.",
        "schema": {"type": "string"},
    },
    "Access-Control-Request-Method": {
        "name": "Access-Control-Request-Method",
        "in": "header",
        "required": False,
        "description": "The method the browser asks to send: POST, the only one allowed.",
        "schema": {"type": "string"},
    },
    "Accept-Language": {
        "name": "Accept-Language",
        "in": "header",
        "required": False,
        "description": "The page's language among the shipped locales (en, es, fr, de, pt); otherwise en.",
        "schema": {"type": "string"},
    },
}

# One shared answer per error status; the descriptions name the contract's codes for it.
_ERRORS: Final[dict[int, tuple[str, str]]] = {
    400: (
        "BadRequest",
        "INVALID_REQUEST (not JSON, wrong types, missing or unknown fields: `errors` names them), "
        "INVALID_PHONE_NUMBER, UNSUPPORTED_COUNTRY, UNSUPPORTED_NUMBER_TYPE or INVALID_MESSAGE_TEMPLATE.",
    ),
    401: ("Unauthorized", "UNAUTHORIZED: a missing, malformed, unknown, expired or revoked credential."),
    403: (
        "Forbidden",
        "FORBIDDEN (a valid credential that may not do this, or a CORS preflight from an origin no app allows) or "
        "DESTINATION_BLOCKED (the fraud guard blocks sends to this destination; nothing was sent or charged).",
    ),
    404: ("NotFound", "NOT_FOUND: the resource does not exist."),
    409: ("Conflict", "CONFLICT: the resource's state does not allow this."),
    429: (
        "TooManyRequests",
        "RATE_LIMITED (a send, resend or verify limit, a lockout, or the stage's request rate) or "
        "SEND_BUDGET_EXCEEDED (an SMS budget is spent for its window); retry after `Retry-After` seconds.",
    ),
    502: ("DeliveryFailed", "DELIVERY_FAILED: every configured SMS provider failed."),
    503: ("ServiceUnavailable", "SERVICE_UNAVAILABLE: a dependency is down; the request had no effect."),
}
_SUCCESS: Final = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content"}


def _model(name: str) -> Any:
    # otp_core.models loads each area's module on first use of one of its names.
    return getattr(importlib.import_module("otp_core.models"), name)


def _untitled(schema: Any) -> Any:
    """A JSON schema without pydantic's generated ``title`` of each field ("Phonenumber"); the component keeps
    its model's name."""
    if isinstance(schema, dict):
        return {
            key: _untitled(value) for key, value in schema.items() if not (key == "title" and isinstance(value, str))
        }
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    return schema


def model_schemas() -> dict[str, dict[str, Any]]:
    """The JSON schemas of the routes' request (validation) and answer (serialization) models, by model name,
    with the models they nest."""
    from pydantic.json_schema import models_json_schema

    requests = {route.request for route in ROUTES if route.request and route.request not in _HAND_WRITTEN_BODIES}
    responses = {route.response for route in ROUTES if route.response and route.response not in HAND_WRITTEN}
    models = [(_model(name), "validation") for name in sorted(requests)]
    models += [(_model(name), "serialization") for name in sorted(responses)]
    _, found = models_json_schema(models, by_alias=True, ref_template=_SCHEMAS + "{model}")  # type: ignore[arg-type]
    definitions: dict[str, dict[str, Any]] = found.get("$defs", {})
    return {name: {**_untitled(schema), "title": name} for name, schema in definitions.items()}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = [segment[1:-1] for segment in path.split("/") if segment.startswith("{") and segment.endswith("}")]
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": _PATH_PARAMETERS[name][0],
            "schema": _PATH_PARAMETERS[name][1],
        }
        for name in names
    ]


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "security": [] if route.security is None else [{route.security: []}],
    }
    parameters = [
        *_path_parameters(route.path),
        *(_QUERY_PARAMETERS[name] for name in route.query),
        *(_HEADER_PARAMETERS[name] for name in route.headers),
    ]
    if parameters:
        operation["parameters"] = parameters
    if route.request in _HAND_WRITTEN_BODIES:
        operation["requestBody"] = {"required": True, "content": _HAND_WRITTEN_BODIES[route.request]}
    elif route.request is not None:
        operation["requestBody"] = {
            "required": route.request_required,
            "content": {"application/json": {"schema": {"$ref": _SCHEMAS + route.request}}},
        }
    success: dict[str, Any] = {"description": _SUCCESS[route.success]}
    if route.response is not None:
        success["content"] = {route.media_type: {"schema": {"$ref": _SCHEMAS + route.response}}}
    responses: dict[str, Any] = {str(route.success): success}
    for status in sorted({*route.errors, *CREDENTIAL_ERRORS[route.security], *EVERY_ROUTE}):
        responses[str(status)] = {"$ref": _RESPONSES + _ERRORS[status][0]}
    operation["responses"] = responses
    return operation


def _error_responses() -> dict[str, dict[str, Any]]:
    problem = {"application/problem+json": {"schema": {"$ref": _SCHEMAS + "Problem"}}}
    found: dict[str, dict[str, Any]] = {}
    for status, (name, description) in _ERRORS.items():
        response: dict[str, Any] = {"description": description, "content": problem}
        if status == 429:
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds until a retry may succeed.",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
        found[name] = response
    return found


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every native route of the contract (not the facades, not ``/_local``).

    Returns
    -------
    dict
        The document, JSON-serialisable; its server is relative to where it is served
        (``<base>/v1/openapi.json``), so it names the stage or domain it was fetched from.
    """
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Self-hosted SMS one-time passcodes: challenges, adaptive MFA, client and signed-in "
            "verification, apps and the fraud guard. JSON bodies use camelCase; unknown fields are refused (400); "
            "errors are RFC 9457 problem documents.",
        },
        "servers": [{"url": "..", "description": "The API stage (or domain) this document was fetched from."}],
        "tags": [{"name": tag} for tag in dict.fromkeys(route.tag for route in ROUTES)],
        "paths": paths,
        "components": {
            "schemas": {**model_schemas(), **HAND_WRITTEN},
            "responses": _error_responses(),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
