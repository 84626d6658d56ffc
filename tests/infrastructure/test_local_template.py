"""template.yaml as the local stack reads it: the AdminApi condition, the admin key and the admin policies.

No services run here: the template is resolved with the local stack's Resolver, routed with its Gateway and
its policies evaluated with local.iam, the way ``make run`` does before any request.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from local.__main__ import _admin_line
from local.gateway import FunctionRunner, Gateway, Handler
from local.iam import Access, Arns, accesses, function_policy
from local.outbox import Outbox
from local.services import DEFAULT_ADMIN_KEY, local_admin_key, resolve_environment
from local.template import Function, Resolver, Template, upper_snake
from otp_core.app_admin import KEY_CACHE_SECONDS

REGION, ACCOUNT = "us-east-1", "123456789012"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/local-table"
ADMIN_FUNCTIONS = {
    "AdminListBlocksFunction",
    "AdminCreateBlockFunction",
    "AdminDeleteBlockFunction",
    "AdminGetSafeListFunction",
    "AdminPutSafeListFunction",
    "AdminCreateAppFunction",
    "AdminListAppsFunction",
    "AdminGetAppFunction",
    "AdminUpdateAppFunction",
    "AdminDeleteAppFunction",
    "AdminCreateKeyFunction",
    "AdminListKeysFunction",
    "AdminDeleteKeyFunction",
}
SECRETS = {
    "ApiKeySecret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:api-key-AbCdEf",
    "AdminKeySecret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:admin-key-GhIjKl",
    "CodeSecret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:code-key-MnOpQr",
}


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load()


def _no_handler(function: Function) -> Handler:
    raise AssertionError(f"{function.logical_id} was not meant to run")


def _gateway(template: Template, environ: dict[str, str]) -> Gateway:
    resolver = Resolver(template, environ=environ)
    runner = FunctionRunner(loader=_no_handler)
    return Gateway(template, runner=runner, outbox=Outbox(echo=None), active=resolver.is_active)


def test_the_admin_routes_are_served_by_default_through_the_admin_authorizer(template: Template) -> None:
    # When the local stack routes the template with no AdminApi setting
    routes = {(r.method, r.path): r for r in _gateway(template, {}).routes}

    # Then every admin route is there, behind the AdminKeyAuthorizer (the same function as the API keys')
    admin = {key: route for key, route in routes.items() if key[1].startswith("/v1/admin/")}
    assert {route.function_id for route in admin.values()} == ADMIN_FUNCTIONS
    assert {route.authorizer for route in admin.values()} == {"AdminKeyAuthorizer"}
    assert routes[("POST", "/v1/challenges")].authorizer == "ApiKeyAuthorizer"
    assert template.authorizers["AdminKeyAuthorizer"].function_id == "ApiKeyAuthorizerFunction"
    # And both cache an answer 30 seconds, so with the key cache a revoked key is refused within 60
    for authorizer in ("ApiKeyAuthorizer", "AdminKeyAuthorizer"):
        ttl = template.authorizers[authorizer].ttl_seconds
        assert ttl == 30, authorizer
        assert ttl + KEY_CACHE_SECONDS <= 60, authorizer


@pytest.mark.parametrize("environ", [{"AdminApi": "disabled"}, {"ADMIN_API": "disabled"}], ids=["name", "env-style"])
def test_admin_api_disabled_leaves_the_admin_routes_out(template: Template, environ: dict[str, str]) -> None:
    # Given the parameter set to disabled, by its name or in the environment's style
    resolver = Resolver(template, environ=environ)

    # When the local stack routes the template
    routes = _gateway(template, environ).routes

    # Then no admin function exists, and every other route is still served
    assert not resolver.condition("AdminApiEnabled")
    assert not any(resolver.is_active(name) for name in ADMIN_FUNCTIONS)
    assert not any(route.path.startswith("/v1/admin/") for route in routes)
    assert ("POST", "/v1/challenges") in {(route.method, route.path) for route in routes}
    # And the functions' shared environment still carries the admin key's secret (the authorizer reads it)
    environment = resolve_environment(template, resolver, {})
    assert environment["ADMIN_KEY_SECRET_ID"]


def test_a_parameter_no_variable_is_bound_to_goes_by_its_upper_snake_name(template: Template) -> None:
    assert upper_snake("AdminApi") == "ADMIN_API"
    assert upper_snake("ConversionAlarmPercent") == "CONVERSION_ALARM_PERCENT"
    # A bound parameter keeps going by its variable's name only
    assert Resolver(template, environ={"FRAUD_GUARD_MODE": "monitor"}).ref("FraudGuardMode") == "monitor"
    assert Resolver(template, environ={"ALARM_EMAIL": "ops@example.com"}).condition("HasAlarmEmail")


@pytest.mark.parametrize(
    ("path", "function_id"),
    [
        ("/v1/health", "HealthFunction"),
        ("/.well-known/jwks.json", "JwksFunction"),
        ("/v1/openapi.json", "OpenApiFunction"),
        ("/v1/hosted/challenge", "HostedPageFunction"),
        ("/v1/hosted/challenge.js", "HostedPageFunction"),
        ("/v1/hosted/challenge.css", "HostedPageFunction"),
        ("/v1/hosted/sms-otp.js", "HostedPageFunction"),
    ],
)
def test_the_public_documents_are_served_without_an_authorizer(template: Template, path: str, function_id: str) -> None:
    # When the local stack routes the template, with or without the admin routes
    for environ in ({}, {"AdminApi": "disabled"}):
        routes = {(r.method, r.path): r for r in _gateway(template, environ).routes}

        # Then the public GET routes are there, each on its function, behind no authorizer
        route = routes[("GET", path)]
        assert (route.function_id, route.authorizer) == (function_id, None), environ


# ------------------------------------------------------------------------------------------ IAM


@pytest.fixture(scope="module")
def resolver(template: Template) -> Resolver:
    refs = {"Table": "local-table", **SECRETS}
    return Resolver(template, refs=refs, attributes={("Table", "Arn"): TABLE_ARN}, environ={})


def _allows(template: Template, resolver: Resolver, function_id: str, action: str, resource: str) -> bool:
    return function_policy(template, resolver, function_id).allows(Access(action, resource))


Call = tuple[str, str, dict[str, Any]]  # (IAM prefix, operation, boto3 parameters)


def _table(operation: str) -> Call:
    return ("dynamodb", operation, {"TableName": "local-table"})


def _transaction(*kinds: str) -> Call:
    return (
        "dynamodb",
        "TransactWriteItems",
        {"TransactItems": [{kind: {"TableName": "local-table"}} for kind in kinds]},
    )


def _secret(logical_id: str) -> Call:
    return ("secretsmanager", "GetSecretValue", {"SecretId": SECRETS[logical_id]})


# The record of the app a fraud route names (it must exist).
_APP_RECORD = _table("GetItem")
# The app default, stored with its stack-generated key on first use (otp_core.app_admin.AppAdmin._default): put
# the app and its Twilio SID, read it back, count, list and index the key whose digest the secret gives.
_DEFAULT_APP = [
    _transaction("Put", "Put"),
    _table("GetItem"),
    _transaction("Update", "Put", "Put"),
    _secret("ApiKeySecret"),
]
# A key revoked: unlist it, mark its digest revoked, uncount it.
_REVOKE = _transaction("Delete", "Update", "Update")

# The calls each operator route makes (otp_core.adapters.fraud_store and app_store), as boto3 parameters.
ADMIN_CALLS: dict[str, list[Call]] = {
    "AdminListBlocksFunction": [_table("Query"), _APP_RECORD],
    "AdminCreateBlockFunction": [_table("UpdateItem"), _APP_RECORD],
    "AdminDeleteBlockFunction": [
        _table("DeleteItem"),
        ("dynamodb", "BatchWriteItem", {"RequestItems": {"local-table": []}}),
        _APP_RECORD,
    ],
    "AdminGetSafeListFunction": [_table("GetItem")],
    "AdminPutSafeListFunction": [_table("PutItem"), _APP_RECORD],
    # the app, its audience and its SID; the apps' identity providers compared first
    "AdminCreateAppFunction": [_table("Query"), _transaction("Put", "Put", "Put")],
    "AdminListAppsFunction": [*_DEFAULT_APP, _table("Query")],
    "AdminGetAppFunction": [*_DEFAULT_APP, _table("GetItem")],
    # the record if unchanged, the new audience in and the old one out; identity providers compared first
    "AdminUpdateAppFunction": [
        *_DEFAULT_APP,
        _table("GetItem"),
        _table("Query"),
        _transaction("Update", "Put", "Delete"),
    ],
    # mark it deleted, then revoke each of its keys
    "AdminDeleteAppFunction": [_table("UpdateItem"), _table("Query"), _REVOKE],
    "AdminCreateKeyFunction": [*_DEFAULT_APP, _table("GetItem"), _transaction("Update", "Put", "Put")],
    "AdminListKeysFunction": [*_DEFAULT_APP, _table("GetItem"), _table("Query")],
    "AdminDeleteKeyFunction": [*_DEFAULT_APP, _table("GetItem"), _table("Query"), _REVOKE],
}
# Actions template.yaml grants although no call of the route needs them (none today). Pinned so that an
# excess grant cannot spread unnoticed; drop an entry once the template drops the grant.
UNUSED_GRANTS: dict[str, set[str]] = {}
TABLE_OPERATIONS = (
    "Query",
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "Scan",
    "BatchGetItem",
    "ConditionCheckItem",
)


@pytest.mark.parametrize("function_id", sorted(ADMIN_FUNCTIONS))
def test_admin_functions_may_make_their_routes_calls_and_no_other(
    template: Template, resolver: Resolver, function_id: str
) -> None:
    # Given an admin function's policy as the local IAM check reads it
    policy = function_policy(template, resolver, function_id)
    assert not policy.unsupported
    arns = Arns(REGION, ACCOUNT)

    # Then every call its route makes is allowed
    made: set[str] = set()
    for prefix, operation, params in ADMIN_CALLS[function_id]:
        for access in accesses(prefix, operation, params, arns):
            assert policy.allows(access), (function_id, operation, access)
            made.add(access.action)

    # And no other table operation, nor the table of another stack, nor a secret it does not read
    unused = UNUSED_GRANTS.get(function_id, set())
    for operation in TABLE_OPERATIONS:
        action = f"dynamodb:{operation}"
        if action in made:
            continue
        allowed = _allows(template, resolver, function_id, action, TABLE_ARN)
        if action in unused:
            assert allowed, f"{function_id}: template.yaml no longer grants {action}; drop it from UNUSED_GRANTS"
        else:
            assert not allowed, (function_id, operation)
    other_table = TABLE_ARN.replace("local-table", "other")
    assert not any(
        _allows(template, resolver, function_id, action, other_table)
        for action in made
        if action.startswith("dynamodb:")
    )
    for logical_id, arn in SECRETS.items():
        reads = ("secretsmanager:GetSecretValue", arn) in {(a.action, a.resource) for a in _accesses(function_id)}
        assert _allows(template, resolver, function_id, "secretsmanager:GetSecretValue", arn) is reads, (
            function_id,
            logical_id,
        )


def _accesses(function_id: str) -> list[Access]:
    arns = Arns(REGION, ACCOUNT)
    return [access for call in ADMIN_CALLS[function_id] for access in accesses(*call, arns)]


def test_the_api_description_may_call_no_aws_service(template: Template, resolver: Resolver) -> None:
    # Given the openapi function's policy as the local IAM check reads it (the document is built from code)
    policy = function_policy(template, resolver, "OpenApiFunction")

    # Then it holds no statement: no table, no secret, no key
    assert not policy.unsupported
    assert policy.statements == ()
    assert not any(
        _allows(template, resolver, "OpenApiFunction", f"dynamodb:{op}", TABLE_ARN) for op in TABLE_OPERATIONS
    )
    assert not any(
        _allows(template, resolver, "OpenApiFunction", "secretsmanager:GetSecretValue", arn) for arn in SECRETS.values()
    )


def test_the_hosted_page_may_only_read_the_table(template: Template, resolver: Resolver) -> None:
    # Given the hosted page function's policy as the local IAM check reads it (it lists the apps' origins)
    policy = function_policy(template, resolver, "HostedPageFunction")

    # Then it may read items and query the apps' partition, and nothing else: no write, no secret
    assert not policy.unsupported
    allowed = {
        op for op in TABLE_OPERATIONS if _allows(template, resolver, "HostedPageFunction", f"dynamodb:{op}", TABLE_ARN)
    }
    assert allowed == {"GetItem", "Query"}
    assert not any(
        _allows(template, resolver, "HostedPageFunction", "secretsmanager:GetSecretValue", arn)
        for arn in SECRETS.values()
    )


def test_the_pinned_unused_grants_are_admin_table_actions_no_call_makes() -> None:
    for function_id, actions in UNUSED_GRANTS.items():
        assert function_id in ADMIN_FUNCTIONS
        assert not actions & {access.action for access in _accesses(function_id)}, function_id
        assert all(action.removeprefix("dynamodb:") in TABLE_OPERATIONS for action in actions), function_id


def test_the_authorizer_may_look_keys_up_store_defaults_key_and_record_use_and_no_more(
    template: Template, resolver: Resolver
) -> None:
    # Given the calls the authorizer makes (otp_core.app_admin.KeyAuthority): a digest's grant, default stored
    # with its stack-generated key on that key's first use, and a key's last use
    arns = Arns(REGION, ACCOUNT)
    calls = [_table("GetItem"), _transaction("Put", "Put"), _transaction("Update", "Put", "Put"), _table("UpdateItem")]
    policy = function_policy(template, resolver, "ApiKeyAuthorizerFunction")

    # Then each is allowed, and no other table operation is
    made = set()
    for call in calls:
        for access in accesses(*call, arns):
            assert policy.allows(access), access
            made.add(access.action)
    for operation in TABLE_OPERATIONS:
        if f"dynamodb:{operation}" not in made:
            assert not policy.allows(Access(f"dynamodb:{operation}", TABLE_ARN)), operation


def test_the_authorizer_may_read_both_keys_and_no_other_secret(template: Template, resolver: Resolver) -> None:
    for secret in ("ApiKeySecret", "AdminKeySecret"):
        assert _allows(
            template, resolver, "ApiKeyAuthorizerFunction", "secretsmanager:GetSecretValue", resolver.refs[secret]
        )
    assert not _allows(
        template, resolver, "ApiKeyAuthorizerFunction", "secretsmanager:GetSecretValue", resolver.refs["CodeSecret"]
    )


# ------------------------------------------------------------------------------------- the admin key


def test_the_local_admin_key_is_well_known_unless_the_environment_names_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTP_LOCAL_ADMIN_KEY", raising=False)
    assert local_admin_key() == DEFAULT_ADMIN_KEY == "local-admin-key"
    monkeypatch.setenv("OTP_LOCAL_ADMIN_KEY", "my-admin-key")
    assert local_admin_key() == "my-admin-key"


@pytest.mark.parametrize(("serves", "shown"), [(True, "local-admin-key"), (False, "AdminApi=disabled")])
def test_the_banner_names_the_admin_key_or_why_there_is_none(serves: bool, shown: str) -> None:
    stack: Any = SimpleNamespace(serves_admin=serves, admin_key="local-admin-key")
    line = _admin_line(stack)
    assert line.startswith("Admin key:")
    assert shown in line


# ------------------------------------------------------------------------------ End User Messaging

PROVIDER_SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:sms-providers-StUvWx"


def _routed_resolver(template: Template, environ: dict[str, str]) -> Resolver:
    refs = {"Table": "local-table", "SmsProviderSecret": PROVIDER_SECRET_ARN, **SECRETS}
    return Resolver(template, refs=refs, attributes={("Table", "Arn"): TABLE_ARN}, environ=environ)


def _sms_voice(resource: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:sms-voice:{REGION}:{account}:{resource}"


def test_the_delivery_events_function_may_record_a_receipt_and_feed_back_and_no_more(template: Template) -> None:
    # Given the delivery events function's policy in a stack that routes to End User Messaging
    resolver = _routed_resolver(template, {"SmsProviders": "eum"})
    assert resolver.is_active("DeliveryEventsFunction")
    assert (resolver.region, resolver.account_id) == (REGION, ACCOUNT)
    policy = function_policy(template, resolver, "DeliveryEventsFunction")
    assert not policy.unsupported
    arns = Arns(REGION, ACCOUNT)

    # Then it may make a receipt's calls (otp_core.sms.delivery): read the challenge, then write its delivery
    # record and the fraud buckets' undelivered counts in one transaction, and feed back to the service
    calls: list[Call] = [
        _table("GetItem"),
        _transaction("Update", "Update", "Update"),
        ("sms-voice", "PutMessageFeedback", {"MessageId": "msg-0123", "MessageFeedbackStatus": "RECEIVED"}),
    ]
    made: set[str] = set()
    for call in calls:
        for access in accesses(*call, arns):
            assert policy.allows(access), access
            made.add(access.action)
    assert policy.allows(Access("sms-voice:PutMessageFeedback", _sms_voice("message/msg-0123")))
    assert not policy.allows(Access("sms-voice:PutMessageFeedback", _sms_voice("message/msg-0123", "210987654321")))

    # And no other table operation, no send, no secret
    for operation in TABLE_OPERATIONS:
        if f"dynamodb:{operation}" not in made:
            assert not policy.allows(Access(f"dynamodb:{operation}", TABLE_ARN)), operation
    assert not policy.allows(Access("sms-voice:SendTextMessage", _sms_voice("pool/pool-0123")))
    assert not policy.allows(Access("sns:Publish", "*"))
    for arn in (*SECRETS.values(), PROVIDER_SECRET_ARN):
        assert not policy.allows(Access("secretsmanager:GetSecretValue", arn)), arn


@pytest.mark.parametrize(
    ("function_id", "environ", "action", "resource"),
    [
        ("CreateChallengeFunction", {"SmsProviders": "eum"}, "sms-voice:SendTextMessage", _sms_voice("pool/pool-0")),
        ("VerifyChallengeFunction", {"SmsProviders": "eum"}, "sms-voice:PutMessageFeedback", _sms_voice("message/m")),
        ("ClientVerifyFunction", {"SmsProviders": "sns,twilio"}, "secretsmanager:GetSecretValue", PROVIDER_SECRET_ARN),
    ],
    ids=["eum-send", "eum-feedback", "twilio-feedback-secret"],
)
def test_a_conditional_policy_grants_locally_exactly_when_its_condition_holds(
    template: Template, function_id: str, environ: dict[str, str], action: str, resource: str
) -> None:
    # Given a function's policy in a stack that routes to the provider, and in one that does not
    routed = function_policy(template, _routed_resolver(template, environ), function_id)
    not_routed = function_policy(template, _routed_resolver(template, {}), function_id)

    # Then the conditional policy (an `!If [Cond, !Ref Policy, !Ref AWS::NoValue]` entry) grants the call in the
    # first only, and is read in both
    assert not routed.unsupported
    assert not not_routed.unsupported
    assert routed.allows(Access(action, resource))
    assert not not_routed.allows(Access(action, resource))
