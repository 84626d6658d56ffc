"""The local stack's pure parts: template reading and resolution, routing, events, authorizer, outbox.

Everything runs without a socket: the gateway is driven through ``Gateway.handle`` with small fake handlers,
and boto3 clients are stubbed.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from local.gateway import (
    EMPTY_METRICS_WARNING,
    FunctionRunner,
    Gateway,
    HttpRequest,
    LambdaContext,
    Router,
    build_event,
    gateway_response,
    method_arn,
    policy_allows,
    quiet_empty_metrics,
)
from local.outbox import Outbox, install_outbox_hook, uninstall_outbox_hook
from local.services import resolve_environment, table_request
from local.template import Function, Resolver, Route, Template, load_document

TEMPLATE = """
Parameters:
  CodeLength: {Type: Number, Default: 6}
  AppName: {Type: String, Default: ""}
  StageName: {Type: String, Default: api}
Conditions:
  HasAppName: !Not [!Equals [!Ref AppName, ""]]
Globals:
  Function:
    Handler: app.lambda_handler
    MemorySize: 256
    Timeout: 10
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        CODE_LENGTH: !Ref CodeLength
        APP_NAME: !If [HasAppName, !Ref AppName, !Ref AWS::StackName]
        KEY_ARN: !GetAtt SigningKey.Arn
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: gsi, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - IndexName: byGsi
          KeySchema: [{AttributeName: gsi, KeyType: HASH}]
          Projection: {ProjectionType: KEYS_ONLY}
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: true}
  SigningKey:
    Type: AWS::KMS::Key
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: !Ref StageName
      Auth:
        DefaultAuthorizer: KeyAuthorizer
        Authorizers:
          KeyAuthorizer:
            FunctionPayloadType: TOKEN
            FunctionArn: !GetAtt AuthorizerFunction.Arn
            Identity: {Header: Authorization, ValidationExpression: "^Bearer [A-Za-z0-9-]+$"}
      GatewayResponses:
        UNAUTHORIZED:
          StatusCode: 401
          ResponseParameters: {Headers: {Content-Type: "'application/problem+json'"}}
          ResponseTemplates:
            application/json: '{"title":"Unauthorized","status":401,"code":"UNAUTHORIZED"}'
        ACCESS_DENIED:
          StatusCode: 401
          ResponseParameters: {Headers: {Content-Type: "'application/problem+json'"}}
          ResponseTemplates:
            application/json: '{"title":"Unauthorized","status":401,"code":"UNAUTHORIZED"}'
        MISSING_AUTHENTICATION_TOKEN:
          StatusCode: 404
          ResponseParameters: {Headers: {Content-Type: "'application/problem+json'"}}
          ResponseTemplates:
            application/json: '{"title":"Not Found","status":404,"code":"NOT_FOUND"}'
  CreateThingFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/create_thing/
      Events:
        Api: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /v1/things, Method: post}}
  GetThingFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/get_thing/
      Environment: {Variables: {EXTRA: !Sub "${AWS::StackName}-${Table}-${!Literal}"}}
      Events:
        Api: {Type: Api, Properties: {RestApiId: !Ref Api, Path: "/v1/things/{thingId}", Method: get}}
  VerifyThingFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/verify_thing/
      Events:
        Api: {Type: Api, Properties: {RestApiId: !Ref Api, Path: "/v1/things/{thingId}/verify", Method: post}}
  HealthFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/health/
      Events:
        Api:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /v1/health, Method: get, Auth: {Authorizer: NONE}}
  AuthorizerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/authorizer/
"""

API_KEY = "good-key"


@pytest.fixture
def template() -> Template:
    return Template(load_document(TEMPLATE))


# ------------------------------------------------------------------------------------- template


def test_functions_map_code_uri_and_handler_to_a_module(template: Template) -> None:
    function = template.functions["CreateThingFunction"]
    assert function.module == "functions.create_thing.app"
    assert function.attribute == "lambda_handler"
    assert function.memory_size == 256
    assert function.timeout == 10


def test_routes_use_the_default_authorizer_unless_auth_is_none(template: Template) -> None:
    assert template.functions["CreateThingFunction"].routes == (
        Route("POST", "/v1/things", "CreateThingFunction", "KeyAuthorizer"),
    )
    assert template.functions["CreateThingFunction"].auth
    assert not template.functions["HealthFunction"].auth
    assert template.functions["AuthorizerFunction"].routes == ()


def test_the_authorizer_is_the_function_behind_the_default_authorizer(template: Template) -> None:
    assert template.authorizer == "AuthorizerFunction"
    authorizer = template.authorizers["KeyAuthorizer"]
    assert (authorizer.payload_type, authorizer.header) == ("TOKEN", "Authorization")


def test_functions_can_be_found_by_folder_name(template: Template) -> None:
    assert template.find_function("get_thing").logical_id == "GetThingFunction"
    assert template.find_function("GetThingFunction").logical_id == "GetThingFunction"
    with pytest.raises(KeyError):
        template.find_function("nope")


def test_short_tags_load_as_long_form_intrinsics() -> None:
    document = load_document("A: !Ref X\nB: !GetAtt T.Arn\nC: !Sub 'x-${Y}'\nD: !Condition Z\n")
    assert document == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["T", "Arn"]},
        "C": {"Fn::Sub": "x-${Y}"},
        "D": {"Condition": "Z"},
    }


# ------------------------------------------------------------------------------------- resolver


def test_refs_resolve_to_local_resources_and_parameter_defaults(template: Template) -> None:
    resolver = Resolver(template, refs={"Table": "local-table"}, attributes={("SigningKey", "Arn"): "arn:key"})
    assert resolver.resolve({"Ref": "Table"}) == "local-table"
    assert resolver.resolve({"Ref": "CodeLength"}) == "6"
    assert resolver.resolve({"Fn::GetAtt": ["SigningKey", "Arn"]}) == "arn:key"


def test_a_parameter_named_in_the_environment_overrides_its_default(template: Template) -> None:
    resolver = Resolver(template, environ={"CodeLength": "8"})
    assert resolver.resolve({"Ref": "CodeLength"}) == "8"


def test_sub_replaces_pseudo_parameters_resources_and_keeps_escaped_literals(template: Template) -> None:
    resolver = Resolver(template, refs={"Table": "t1"}, stack_name="stack")
    assert resolver.resolve({"Fn::Sub": "${AWS::StackName}-${Table}-${!Literal}"}) == "stack-t1-${Literal}"
    assert resolver.resolve({"Fn::Sub": ["${A}/${AWS::Region}", {"A": {"Ref": "Table"}}]}) == "t1/us-east-1"


def test_if_follows_the_condition(template: Template) -> None:
    value = {"Fn::If": ["HasAppName", {"Ref": "AppName"}, {"Ref": "AWS::StackName"}]}
    assert Resolver(template, stack_name="stack").resolve(value) == "stack"
    assert Resolver(template, environ={"AppName": "Acme"}).resolve(value) == "Acme"


def test_join_split_select_and_no_value(template: Template) -> None:
    resolver = Resolver(template)
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "CodeLength"}]]}) == "a-6"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}) == "y"
    assert resolver.resolve({"Keep": 1, "Drop": {"Ref": "AWS::NoValue"}}) == {"Keep": 1}


def test_policy_condition_blocks_are_not_taken_for_intrinsics(template: Template) -> None:
    block = {"Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}
    assert Resolver(template).resolve(block) == block


def test_environment_lets_the_shell_override_settings_but_not_resource_names(template: Template) -> None:
    # Given a shell that sets both a policy setting and a resource-bound variable
    resolver = Resolver(template, refs={"Table": "local-table"}, attributes={("SigningKey", "Arn"): "arn:k"})
    environ = {"CODE_LENGTH": "8", "TABLE_NAME": "elsewhere"}
    # When the functions' environment is resolved
    environment = resolve_environment(template, resolver, environ)
    # Then the setting comes from the shell and the table from the stack
    assert environment["CODE_LENGTH"] == "8"
    assert environment["TABLE_NAME"] == "local-table"
    assert environment["APP_NAME"] == "sms-otp-local"
    assert environment["EXTRA"] == "sms-otp-local-local-table-${Literal}"


def test_table_request_keeps_keys_indexes_and_billing(template: Template) -> None:
    request = table_request("t", template.resources["Table"]["Properties"])
    assert request["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in request
    assert request["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "byGsi",
            "KeySchema": [{"AttributeName": "gsi", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ]


# ------------------------------------------------------------------------------------- routing


def test_router_extracts_path_parameters(template: Template) -> None:
    match = Router(template.routes).match("POST", "/v1/things/abc-1/verify")
    assert match is not None
    assert match.route.function_id == "VerifyThingFunction"
    assert match.path_parameters == {"thingId": "abc-1"}


def test_router_decodes_parameters_and_does_not_cross_segments(template: Template) -> None:
    router = Router(template.routes)
    match = router.match("GET", "/v1/things/a%20b")
    assert match is not None
    assert match.path_parameters == {"thingId": "a b"}
    assert router.match("GET", "/v1/things/a/b") is None


def test_router_prefers_literal_segments_over_parameters() -> None:
    router = Router([Route("GET", "/v1/{id}", "ById", None), Route("GET", "/v1/health", "Health", None)])
    match = router.match("GET", "/v1/health")
    assert match is not None
    assert match.route.function_id == "Health"


def test_router_walks_the_path_a_segment_at_a_time_as_api_gateway_does() -> None:
    # Given routes that could each match some of the same paths, listed least specific first
    router = Router(
        [
            Route("ANY", "/a/{proxy+}", "Greedy", None),
            Route("ANY", "/a/client/{proxy+}", "ClientGreedy", None),
            Route("POST", "/a/{x}/b", "ParamThenLiteral", None),
            Route("POST", "/a/client/{factor}", "ClientFactor", None),
            Route("POST", "/a/client/sms", "ClientSms", None),
        ]
    )

    def served(path: str) -> str | None:
        match = router.match("POST", path)
        return None if match is None else match.route.function_id

    # Then at each segment a literal beats {x}, and {x} beats {x+}
    assert served("/a/client/sms") == "ClientSms"
    assert served("/a/client/totp") == "ClientFactor"
    assert served("/a/client/b") == "ClientFactor"  # /a/client/{factor}: "client" is literal at the second segment
    assert served("/a/other/b") == "ParamThenLiteral"
    assert served("/a/client/totp/web") == "ClientGreedy"
    assert served("/a/other/c/d") == "Greedy"


def test_router_rejects_unknown_paths_and_other_methods(template: Template) -> None:
    router = Router(template.routes)
    assert router.match("GET", "/v1/nope") is None
    assert router.match("DELETE", "/v1/things") is None


# -------------------------------------------------------------------------------------- events


def _request(method: str = "GET", target: str = "/", body: bytes = b"", **headers: str) -> HttpRequest:
    return HttpRequest(method, target, [(key.replace("_", "-"), value) for key, value in headers.items()], body)


def test_event_has_the_rest_api_proxy_shape(template: Template) -> None:
    # Given a request with query parameters, a repeated header and a body
    request = HttpRequest(
        "POST",
        "/v1/things/t1/verify?a=1&a=2&b=",
        [("Content-Type", "application/json"), ("X-Thing", "1"), ("X-Thing", "2")],
        b'{"code": "123456"}',
        source_ip="10.0.0.7",
    )
    match = Router(template.routes).match(request.method, request.path)
    assert match is not None
    now = datetime(2026, 11, 21, 22, 10, tzinfo=UTC)
    # When the event is built
    event = build_event(request, match, stage="api", request_id="r-1", authorizer={"principalId": "p"}, now=now)
    # Then it carries what a REST API proxy integration sends
    assert event["resource"] == "/v1/things/{thingId}/verify"
    assert event["path"] == "/v1/things/t1/verify"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"thingId": "t1"}
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["headers"]["X-Thing"] == "2"
    assert event["multiValueHeaders"]["X-Thing"] == ["1", "2"]
    assert event["headers"]["X-Forwarded-For"] == "10.0.0.7"
    assert event["stageVariables"] is None
    assert event["body"] == '{"code": "123456"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["requestId"] == "r-1"
    assert context["stage"] == "api"
    assert context["resourcePath"] == "/v1/things/{thingId}/verify"
    assert context["identity"]["sourceIp"] == "10.0.0.7"
    assert context["requestTimeEpoch"] == int(now.timestamp() * 1000)
    assert context["authorizer"] == {"principalId": "p"}


def test_event_without_query_body_or_parameters_uses_nulls(template: Template) -> None:
    match = Router(template.routes).match("GET", "/v1/health")
    assert match is not None
    event = build_event(_request("GET", "/v1/health"), match, stage="api", request_id="r")
    assert event["queryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["body"] is None
    assert "authorizer" not in event["requestContext"]


def test_method_arn_names_the_stage_method_and_path() -> None:
    arn = method_arn(_request("POST", "/v1/things?x=1"), stage="api", region="us-east-1")
    assert arn == "arn:aws:execute-api:us-east-1:123456789012:local/api/POST/v1/things"


def test_policy_allows_matching_allow_and_lets_deny_win() -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:local/api/GET/v1/things"
    allow = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:local/api/*"}
    deny = {**allow, "Effect": "Deny", "Resource": [arn]}
    assert policy_allows({"Statement": [allow]}, arn)
    assert not policy_allows({"Statement": [allow, deny]}, arn)
    assert not policy_allows({"Statement": {**allow, "Resource": "arn:other"}}, arn)


def test_lambda_context_counts_down_from_the_timeout(template: Template) -> None:
    context = LambdaContext.for_function(template.functions["HealthFunction"])
    assert context.function_name == "sms-otp-local-HealthFunction"
    assert context.memory_limit_in_mb == 256
    assert 9_000 < context.get_remaining_time_in_millis() <= 10_000


def test_unconfigured_gateway_responses_take_the_default_4xx_status() -> None:
    responses = {"DEFAULT_4XX": {"StatusCode": 400, "ResponseTemplates": {"application/json": '{"c": 1}'}}}
    response = gateway_response(responses, "REQUEST_TOO_LARGE", "Request Too Long", "r")
    assert (response.status, response.json()) == (400, {"c": 1})
    assert gateway_response({}, "REQUEST_TOO_LARGE", "Request Too Long", "r").status == 413


# -------------------------------------------------------------------------------------- gateway


class FakeFunctions:
    """Stand-in handlers by logical id; records what each one was called with."""

    def __init__(self) -> None:
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self.handlers = {
            "AuthorizerFunction": self.authorizer,
            "HealthFunction": lambda event, context: {"statusCode": 200, "body": '{"status": "ok"}'},
            "GetThingFunction": self.echo,
            "CreateThingFunction": self.fail,
            "VerifyThingFunction": self.binary,
        }

    def load(self, function: Function) -> Any:
        def handler(event: dict[str, Any], context: Any) -> Any:
            self.calls.setdefault(function.logical_id, []).append(event)
            return self.handlers[function.logical_id](event, context)

        return handler

    @staticmethod
    def authorizer(event: dict[str, Any], context: Any) -> Any:
        if event["authorizationToken"] == "Bearer raise":
            raise Exception("Unauthorized")  # noqa: TRY002 - what real authorizers raise
        effect = "Allow" if event["authorizationToken"] == f"Bearer {API_KEY}" else "Deny"
        resource = event["methodArn"].split("/")[0] + "/*"
        statement = {"Effect": effect, "Action": "execute-api:Invoke", "Resource": resource}
        return {"principalId": "key-1", "policyDocument": {"Statement": [statement]}, "context": {"admin": True}}

    @staticmethod
    def echo(event: dict[str, Any], context: Any) -> Any:
        body = {"thingId": event["pathParameters"]["thingId"], "authorizer": event["requestContext"]["authorizer"]}
        return {"statusCode": 200, "multiValueHeaders": {"X-Many": ["1", "2"]}, "body": json.dumps(body)}

    @staticmethod
    def fail(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("database password is hunter2")

    @staticmethod
    def binary(event: dict[str, Any], context: Any) -> Any:
        body = base64.b64encode(b"\x00\x01").decode()
        return {"statusCode": 200, "headers": {"Content-Type": "application/octet-stream"}, "body": body,
                "isBase64Encoded": True}  # fmt: skip


@pytest.fixture
def fakes() -> FakeFunctions:
    return FakeFunctions()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox(echo=None)


@pytest.fixture
def gateway(template: Template, fakes: FakeFunctions, outbox: Outbox) -> Gateway:
    return Gateway(template, stage="api", runner=FunctionRunner(loader=fakes.load), outbox=outbox)


def _auth(key: str = API_KEY) -> tuple[str, str]:
    return ("Authorization", f"Bearer {key}")


def test_public_route_answers_without_authorizer(gateway: Gateway, fakes: FakeFunctions) -> None:
    response = gateway.handle(HttpRequest("GET", "/v1/health", []))
    assert (response.status, response.json()) == (200, {"status": "ok"})
    assert response.header("Content-Type") == "application/json"
    assert "AuthorizerFunction" not in fakes.calls


def test_protected_route_passes_authorizer_context_as_strings(gateway: Gateway) -> None:
    response = gateway.handle(HttpRequest("GET", "/v1/things/t-9", [_auth()]))
    assert response.status == 200
    body = response.json()
    assert body["thingId"] == "t-9"
    assert body["authorizer"]["principalId"] == "key-1"
    assert body["authorizer"]["admin"] == "true"
    assert [value for name, value in response.headers if name == "X-Many"] == ["1", "2"]


@pytest.mark.parametrize(
    "headers",
    [[], [_auth("wrong-key")], [("Authorization", "Basic abc")], [_auth("raise")]],
    ids=["missing", "denied", "fails-validation-expression", "authorizer-raises-unauthorized"],
)
def test_failed_authorization_answers_401_problem(gateway: Gateway, headers: list[tuple[str, str]]) -> None:
    response = gateway.handle(HttpRequest("GET", "/v1/things/t-9", headers))
    assert response.status == 401
    assert response.header("Content-Type") == "application/problem+json"
    assert response.json()["code"] == "UNAUTHORIZED"


def test_authorizer_results_are_cached_per_token(gateway: Gateway, fakes: FakeFunctions) -> None:
    gateway.handle(HttpRequest("GET", "/v1/things/a", [_auth()]))
    gateway.handle(HttpRequest("GET", "/v1/things/b", [_auth()]))
    assert len(fakes.calls["AuthorizerFunction"]) == 1
    assert len(fakes.calls["GetThingFunction"]) == 2


def test_authorizer_gets_a_token_event(gateway: Gateway, fakes: FakeFunctions) -> None:
    gateway.handle(HttpRequest("GET", "/v1/things/a", [_auth()]))
    (event,) = fakes.calls["AuthorizerFunction"]
    assert event == {
        "type": "TOKEN",
        "authorizationToken": f"Bearer {API_KEY}",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:local/api/GET/v1/things/a",
    }


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/unknown"), ("PUT", "/v1/health")])
def test_unknown_routes_and_methods_answer_404_problem(gateway: Gateway, method: str, path: str) -> None:
    response = gateway.handle(HttpRequest(method, path, [_auth()]))
    assert response.status == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_handler_exception_answers_502_without_its_text(gateway: Gateway) -> None:
    response = gateway.handle(HttpRequest("POST", "/v1/things", [_auth()], b"{}"))
    assert response.status == 502
    assert response.header("Content-Type") == "application/problem+json"
    assert b"hunter2" not in response.body
    assert b"Traceback" not in response.body


def test_base64_responses_are_decoded(gateway: Gateway) -> None:
    response = gateway.handle(HttpRequest("POST", "/v1/things/t/verify", [_auth()], b"{}"))
    assert (response.status, response.body) == (200, b"\x00\x01")


def test_outbox_routes_list_and_empty_the_outbox(gateway: Gateway, outbox: Outbox) -> None:
    # Given one recorded SMS
    outbox.record_publish({"PhoneNumber": "+14155552671", "Message": "123456 is your code"})
    # When the outbox is read, then emptied
    listed = gateway.handle(HttpRequest("GET", "/_local/outbox", []))
    emptied = gateway.handle(HttpRequest("DELETE", "/_local/outbox", []))
    # Then the read shows the message and the outbox is empty afterwards, no API key needed
    assert listed.status == 200
    assert [message["to"] for message in listed.json()["messages"]] == ["+14155552671"]
    assert emptied.status == 204
    assert outbox.messages() == []


def test_counters_route_resets_and_reports_how_many(template: Template, fakes: FakeFunctions) -> None:
    # Given a gateway whose stack can reset its counters
    resets: list[int] = []

    def reset() -> int:
        resets.append(1)
        return 7

    gateway = Gateway(template, runner=FunctionRunner(loader=fakes.load), reset_counters=reset)

    # When the counters are deleted, then read
    deleted = gateway.handle(HttpRequest("DELETE", "/_local/counters", []))
    read = gateway.handle(HttpRequest("GET", "/_local/counters", []))

    # Then only DELETE resets (no API key needed, like the outbox), and says how many items went
    assert (deleted.status, deleted.json()) == (200, {"deleted": 7})
    assert read.header("x-amzn-ErrorType") == "MISSING_AUTHENTICATION_TOKEN"
    assert resets == [1]


def test_without_a_reset_the_counters_route_does_not_exist(gateway: Gateway) -> None:
    response = gateway.handle(HttpRequest("DELETE", "/_local/counters", []))

    assert response.header("x-amzn-ErrorType") == "MISSING_AUTHENTICATION_TOKEN"


def test_empty_metrics_warnings_are_quiet_while_handlers_run() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_empty_metrics():
            warnings.warn(f"{EMPTY_METRICS_WARNING}. The cold-start metric may be published", stacklevel=1)
            warnings.warn("another warning", stacklevel=1)
        warnings.warn(f"{EMPTY_METRICS_WARNING} after the stack", stacklevel=1)

    assert [str(warning.message) for warning in seen] == ["another warning", f"{EMPTY_METRICS_WARNING} after the stack"]


def test_templates_parse_as_cfn_lint_reads_them() -> None:
    assert load_document('{"A": {"Ref": "X"}}') == {"A": {"Ref": "X"}}
    assert type(load_document("A: !Ref X")["A"]["Ref"]) is str  # plain values, not cfn-lint's nodes
    with pytest.raises(ValueError, match="Duplicate"):
        load_document("A: 1\nA: 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_document("- 1\n")


# --------------------------------------------------------------------------------------- outbox


def test_outbox_records_sms_with_sender_id() -> None:
    outbox = Outbox(echo=None)
    now = datetime(2026, 11, 21, 22, 10, 5, 123000, tzinfo=UTC)
    params = {
        "PhoneNumber": "+14155552671",
        "Message": "hi",
        "MessageAttributes": {"AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": "ACME"}},
    }
    outbox.record_publish(params, now=now)
    outbox.record_publish({"PhoneNumber": "+14155550000", "Message": "second"}, now=now)
    assert outbox.messages() == [
        {"to": "+14155552671", "body": "hi", "senderId": "ACME", "provider": "sns", "sentAt": "2026-11-21T22:10:05Z"},
        {"to": "+14155550000", "body": "second", "senderId": None, "provider": "sns", "sentAt": "2026-11-21T22:10:05Z"},
    ]
    assert [message["body"] for message in outbox.messages(to="+14155550000")] == ["second"]


def test_outbox_ignores_publishes_to_topics() -> None:
    outbox = Outbox(echo=None)
    assert outbox.record_publish({"TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "x"}) is None
    assert outbox.messages() == []


@pytest.fixture
def hooked_outbox() -> Iterator[Outbox]:
    outbox = Outbox(echo=None)
    install_outbox_hook(outbox)
    yield outbox
    uninstall_outbox_hook(outbox)


def _sns_client() -> Any:
    session = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    return session.client("sns")


def test_hook_records_publishes_of_clients_created_after_it(hooked_outbox: Outbox) -> None:
    # Given a client created after the hook, whose publish SNS accepts
    client = _sns_client()
    with Stubber(client) as stub:
        stub.add_response("publish", {"MessageId": "m-1"})
        # When it sends an SMS
        client.publish(PhoneNumber="+14155552671", Message="code 1")
    # Then the outbox has it
    assert [(message["to"], message["body"]) for message in hooked_outbox.messages()] == [("+14155552671", "code 1")]


def test_hook_skips_publishes_that_sns_rejects(hooked_outbox: Outbox) -> None:
    client = _sns_client()
    with Stubber(client) as stub:
        stub.add_client_error("publish", service_error_code="InvalidParameter", http_status_code=400)
        with pytest.raises(client.exceptions.InvalidParameterException):
            client.publish(PhoneNumber="+1", Message="code 1")
    assert hooked_outbox.messages() == []
