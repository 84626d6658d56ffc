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

REGION, ACCOUNT = "us-east-1", "123456789012"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/local-table"
ADMIN_FUNCTIONS = {
    "AdminListBlocksFunction",
    "AdminCreateBlockFunction",
    "AdminDeleteBlockFunction",
    "AdminGetSafeListFunction",
    "AdminPutSafeListFunction",
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
    assert template.authorizers["AdminKeyAuthorizer"].ttl_seconds == 300


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


# ------------------------------------------------------------------------------------------ IAM


@pytest.fixture(scope="module")
def resolver(template: Template) -> Resolver:
    refs = {
        "Table": "local-table",
        "ApiKeySecret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:api-key-AbCdEf",
        "AdminKeySecret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:admin-key-GhIjKl",
        "CodeSecret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:code-key-MnOpQr",
    }
    return Resolver(template, refs=refs, attributes={("Table", "Arn"): TABLE_ARN}, environ={})


def _allows(template: Template, resolver: Resolver, function_id: str, action: str, resource: str) -> bool:
    return function_policy(template, resolver, function_id).allows(Access(action, resource))


# The calls each operator route makes (otp_core.adapters.fraud_store), as boto3 parameters.
ADMIN_CALLS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "AdminListBlocksFunction": [("Query", {"TableName": "local-table"})],
    "AdminCreateBlockFunction": [("UpdateItem", {"TableName": "local-table"})],
    "AdminDeleteBlockFunction": [
        ("DeleteItem", {"TableName": "local-table"}),
        ("BatchWriteItem", {"RequestItems": {"local-table": []}}),
    ],
    "AdminGetSafeListFunction": [("GetItem", {"TableName": "local-table"})],
    "AdminPutSafeListFunction": [("PutItem", {"TableName": "local-table"})],
}
TABLE_OPERATIONS = ("Query", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "Scan", "BatchGetItem")


@pytest.mark.parametrize("function_id", sorted(ADMIN_FUNCTIONS))
def test_admin_functions_may_make_their_routes_calls_and_no_other(
    template: Template, resolver: Resolver, function_id: str
) -> None:
    # Given an admin function's policy as the local IAM check reads it
    policy = function_policy(template, resolver, function_id)
    assert not policy.unsupported
    arns = Arns(REGION, ACCOUNT)

    # Then every call its route makes is allowed
    made = {operation for operation, _ in ADMIN_CALLS[function_id]}
    for operation, params in ADMIN_CALLS[function_id]:
        for access in accesses("dynamodb", operation, params, arns):
            assert policy.allows(access), (function_id, operation)

    # And no other table operation, nor the table of another stack, nor a secret
    for operation in set(TABLE_OPERATIONS) - made:
        assert not _allows(template, resolver, function_id, f"dynamodb:{operation}", TABLE_ARN), (
            function_id,
            operation,
        )
    other_table = TABLE_ARN.replace("local-table", "other")
    assert not any(_allows(template, resolver, function_id, f"dynamodb:{op}", other_table) for op in made)
    assert not _allows(template, resolver, function_id, "secretsmanager:GetSecretValue", resolver.refs["CodeSecret"])


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
