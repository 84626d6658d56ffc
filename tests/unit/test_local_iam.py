"""The local stack's IAM check: policies read from a template, calls mapped to IAM actions, calls denied.

No AWS service is involved: denied calls never leave botocore, allowed ones are answered by a Stubber.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from local.iam import (
    DENIAL_MARKER,
    Access,
    Arns,
    IamEnforcer,
    accesses,
    enabled_by_environment,
    function_policy,
    install_iam_hook,
    uninstall_iam_hook,
)
from local.template import Resolver, Template, load_document

ACCOUNT = "123456789012"
TABLE_ARN = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/main"
OTHER_TABLE_ARN = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/other"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/key-1"
CODE_SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:local/CodeSecret-AbCdEf"
OTHER_SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:local/OtherSecret-GhIjKl"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts"

TEMPLATE = """
Parameters:
  RetiredKeys: {Type: String, Default: ""}
Conditions:
  HasRetired: !Not [!Equals [!Ref RetiredKeys, ""]]
Globals:
  Function:
    Handler: app.lambda_handler
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        CODE_SECRET_ID: !Ref CodeSecret
        SIGNING_KEY_ID: !Ref SigningKey
        RETIRED_KEYS: !Ref RetiredKeys
Resources:
  Table: {Type: AWS::DynamoDB::Table}
  OtherTable: {Type: AWS::DynamoDB::Table}
  SigningKey: {Type: AWS::KMS::Key}
  SigningKeyAlias:
    Type: AWS::KMS::Alias
    Properties: {AliasName: alias/signing, TargetKeyId: !Ref SigningKey}
  CodeSecret: {Type: AWS::SecretsManager::Secret}
  OtherSecret: {Type: AWS::SecretsManager::Secret}
  WriterFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/writer/
      Policies:
        - Statement:
            - Sid: Items
              Effect: Allow
              Action:
                - dynamodb:PutItem
                - dynamodb:UpdateItem
                - dynamodb:GetItem
              Resource: !GetAtt Table.Arn
            - Effect: Allow
              Action: dynamodb:BatchGetItem
              Resource: [!GetAtt Table.Arn, !GetAtt OtherTable.Arn]
            - Effect: Deny
              Action: dynamodb:Batch*
              Resource: !GetAtt OtherTable.Arn
            - Effect: Allow
              Action: secretsmanager:GetSecretValue
              Resource: !Ref CodeSecret
            - Effect: Allow
              Action: kms:sign
              Resource: !GetAtt SigningKey.Arn
            - Effect: Allow
              Action: kms:GetPublicKey
              Resource: !If
                - HasRetired
                - - !GetAtt SigningKey.Arn
                  - !Sub arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*
                - - !GetAtt SigningKey.Arn
            - Effect: Allow
              Action: sns:Publish
              NotResource: arn:aws:sns:*:*:*
  PlainFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/plain/
  ManagedFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/managed/
      Policies:
        - AWSLambdaBasicExecutionRole
        - DynamoDBCrudPolicy: {TableName: !Ref Table}
"""


@pytest.fixture
def template() -> Template:
    return Template(load_document(TEMPLATE))


@pytest.fixture
def resolver(template: Template) -> Resolver:
    """The resolver as the local stack's provisioning leaves it: every resource has its physical id."""
    refs = {
        "Table": "main",
        "OtherTable": "other",
        "SigningKey": "key-1",
        "SigningKeyAlias": "alias/signing",
        "CodeSecret": CODE_SECRET_ARN,
        "OtherSecret": OTHER_SECRET_ARN,
    }
    attributes = {
        ("Table", "Arn"): TABLE_ARN,
        ("OtherTable", "Arn"): OTHER_TABLE_ARN,
        ("SigningKey", "Arn"): KEY_ARN,
        ("SigningKey", "KeyId"): "key-1",
    }
    return Resolver(template, refs=refs, attributes=attributes, environ={})


@pytest.fixture
def console() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def enforcer(
    template: Template, resolver: Resolver, console: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> Iterator[IamEnforcer]:
    # The environment the functions would run with: the provisioned names, nothing else.
    monkeypatch.setenv("TABLE_NAME", "main")
    monkeypatch.setenv("CODE_SECRET_ID", CODE_SECRET_ARN)
    monkeypatch.setenv("SIGNING_KEY_ID", "key-1")
    monkeypatch.setenv("RETIRED_KEYS", "")
    enforcer = IamEnforcer(echo=console)
    enforcer.configure(template, resolver)
    install_iam_hook(enforcer)
    yield enforcer
    uninstall_iam_hook(enforcer)
    enforcer.clear()


def client(service: str) -> Any:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    return session.client(service, endpoint_url="http://127.0.0.1:9")  # never reached


def arns() -> Arns:
    return Arns(
        "us-east-1",
        ACCOUNT,
        secrets={"local/CodeSecret": CODE_SECRET_ARN},
        aliases={"alias/signing": KEY_ARN},
    )


# ------------------------------------------------------------------------------------------ policies


def test_statements_become_allowed_actions_per_resource(template: Template, resolver: Resolver) -> None:
    # When the writer's policy is read
    policy = function_policy(template, resolver, "WriterFunction")

    # Then each resolved resource lists the actions allowed on it, intrinsic functions evaluated
    assert policy.grants() == {
        TABLE_ARN: ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:BatchGetItem"),
        OTHER_TABLE_ARN: ("dynamodb:BatchGetItem",),
        CODE_SECRET_ARN: ("secretsmanager:GetSecretValue",),
        KEY_ARN: ("kms:sign", "kms:GetPublicKey"),
        "NOT arn:aws:sns:*:*:*": ("sns:Publish",),
    }
    assert policy.statements[0].sid == "Items"
    assert policy.unsupported == ()


def test_managed_policies_and_policy_templates_are_named_as_not_read(template: Template, resolver: Resolver) -> None:
    policy = function_policy(template, resolver, "ManagedFunction")
    assert policy.statements == ()
    assert policy.unsupported == ("managed policy AWSLambdaBasicExecutionRole", "policy template DynamoDBCrudPolicy")


def test_loading_a_template_says_which_policies_are_not_read(enforcer: IamEnforcer, console: io.StringIO) -> None:
    assert console.getvalue().splitlines() == [
        "local IAM: ManagedFunction: not read, so granting nothing here: "
        "managed policy AWSLambdaBasicExecutionRole; policy template DynamoDBCrudPolicy"
    ]


def test_a_function_without_policies_may_do_nothing(template: Template, resolver: Resolver) -> None:
    policy = function_policy(template, resolver, "PlainFunction")
    assert not policy.allows(Access("dynamodb:GetItem", TABLE_ARN))
    assert not policy.allows(Access("sts:GetCallerIdentity", None))


def test_actions_match_case_insensitively_and_resources_exactly(template: Template, resolver: Resolver) -> None:
    policy = function_policy(template, resolver, "WriterFunction")
    assert policy.allows(Access("kms:Sign", KEY_ARN))  # the template says kms:sign
    assert not policy.allows(Access("kms:Sign", KEY_ARN.upper()))


def test_an_explicit_deny_wins_over_an_allow(template: Template, resolver: Resolver) -> None:
    policy = function_policy(template, resolver, "WriterFunction")
    assert policy.allows(Access("dynamodb:BatchGetItem", TABLE_ARN))
    assert not policy.allows(Access("dynamodb:BatchGetItem", OTHER_TABLE_ARN))


def test_not_resource_allows_sms_to_phone_numbers_but_not_topics(template: Template, resolver: Resolver) -> None:
    policy = function_policy(template, resolver, "WriterFunction")
    assert policy.allows(Access("sns:Publish", "*"))
    assert not policy.allows(Access("sns:Publish", TOPIC_ARN))


# ----------------------------------------------------------------------------- operations to actions


def test_transact_write_items_needs_each_items_action_on_its_table() -> None:
    # Given a transaction with one item of each kind, two of them on the same table and action
    params = {
        "TransactItems": [
            {"Put": {"TableName": "main", "Item": {}}},
            {"Update": {"TableName": "main", "Key": {}, "UpdateExpression": "SET a = :a"}},
            {"Delete": {"TableName": "other", "Key": {}}},
            {"ConditionCheck": {"TableName": "main", "Key": {}, "ConditionExpression": "attribute_exists(pk)"}},
            {"Put": {"TableName": "main", "Item": {}}},
        ]
    }

    # Then it needs the per-item actions, once each, and no dynamodb:TransactWriteItems
    assert accesses("dynamodb", "TransactWriteItems", params, arns()) == [
        Access("dynamodb:PutItem", TABLE_ARN),
        Access("dynamodb:UpdateItem", TABLE_ARN),
        Access("dynamodb:DeleteItem", OTHER_TABLE_ARN),
        Access("dynamodb:ConditionCheckItem", TABLE_ARN),
    ]


@pytest.mark.parametrize(
    ("prefix", "operation", "params", "expected"),
    [
        (
            "dynamodb",
            "TransactGetItems",
            {"TransactItems": [{"Get": {"TableName": "main", "Key": {}}}, {"Get": {"TableName": "other", "Key": {}}}]},
            [Access("dynamodb:GetItem", TABLE_ARN), Access("dynamodb:GetItem", OTHER_TABLE_ARN)],
        ),
        (
            "dynamodb",
            "BatchGetItem",
            {"RequestItems": {"main": {"Keys": [{}]}, "other": {"Keys": [{}]}}},
            [Access("dynamodb:BatchGetItem", TABLE_ARN), Access("dynamodb:BatchGetItem", OTHER_TABLE_ARN)],
        ),
        ("dynamodb", "GetItem", {"TableName": "main", "Key": {}}, [Access("dynamodb:GetItem", TABLE_ARN)]),
        ("dynamodb", "GetItem", {"TableName": TABLE_ARN, "Key": {}}, [Access("dynamodb:GetItem", TABLE_ARN)]),
        (
            "dynamodb",
            "Query",
            {"TableName": "main", "IndexName": "byUser"},
            [Access("dynamodb:Query", f"{TABLE_ARN}/index/byUser")],
        ),
        ("dynamodb", "ListTables", {}, [Access("dynamodb:ListTables", "*")]),
        ("kms", "Sign", {"KeyId": "key-1"}, [Access("kms:Sign", KEY_ARN)]),
        ("kms", "Sign", {"KeyId": KEY_ARN}, [Access("kms:Sign", KEY_ARN)]),
        ("kms", "GetPublicKey", {"KeyId": "alias/signing"}, [Access("kms:GetPublicKey", KEY_ARN)]),
        (
            "kms",
            "GetPublicKey",
            {"KeyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/signing"},
            [Access("kms:GetPublicKey", KEY_ARN)],
        ),
        ("kms", "Sign", {"KeyId": "alias/not-in-the-template"}, [Access("kms:Sign", None)]),
        ("kms", "ListKeys", {}, [Access("kms:ListKeys", "*")]),
        (
            "secretsmanager",
            "GetSecretValue",
            {"SecretId": "local/CodeSecret"},
            [Access("secretsmanager:GetSecretValue", CODE_SECRET_ARN)],
        ),
        (
            "secretsmanager",
            "GetSecretValue",
            {"SecretId": CODE_SECRET_ARN},
            [Access("secretsmanager:GetSecretValue", CODE_SECRET_ARN)],
        ),
        (
            "secretsmanager",
            "GetSecretValue",
            {"SecretId": "unknown"},
            [Access("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:unknown")],
        ),
        (
            "secretsmanager",
            "BatchGetSecretValue",
            {"SecretIdList": ["local/CodeSecret"]},
            [
                Access("secretsmanager:BatchGetSecretValue", "*"),
                Access("secretsmanager:GetSecretValue", CODE_SECRET_ARN),
            ],
        ),
        ("sns", "Publish", {"PhoneNumber": "+14155552671", "Message": "m"}, [Access("sns:Publish", "*")]),
        ("sns", "Publish", {"TopicArn": TOPIC_ARN, "Message": "m"}, [Access("sns:Publish", TOPIC_ARN)]),
        ("sts", "GetCallerIdentity", {}, [Access("sts:GetCallerIdentity", None)]),
    ],
)
def test_operations_map_to_iam_actions_and_resources(
    prefix: str, operation: str, params: dict[str, Any], expected: list[Access]
) -> None:
    assert accesses(prefix, operation, params, arns()) == expected


# ------------------------------------------------------------------------------------------ decisions


def test_a_transaction_with_an_item_the_policy_lacks_is_denied_on_that_item(enforcer: IamEnforcer) -> None:
    # Given a transaction the writer may do, and the same one with a Delete added
    allowed = {
        "TransactItems": [{"Put": {"TableName": "main", "Item": {}}}, {"Update": {"TableName": "main", "Key": {}}}]
    }
    with_delete = {"TransactItems": [*allowed["TransactItems"], {"Delete": {"TableName": "main", "Key": {}}}]}

    # When each is checked
    # Then only the Delete is missing from the policy
    assert enforcer.check("WriterFunction", "dynamodb", "TransactWriteItems", allowed) is None
    denial = enforcer.check("WriterFunction", "dynamodb", "TransactWriteItems", with_delete)
    assert denial is not None
    assert denial.access == Access("dynamodb:DeleteItem", TABLE_ARN)
    assert "dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:GetItem" in denial.report()


def test_secrets_and_keys_other_than_the_granted_ones_are_denied(enforcer: IamEnforcer) -> None:
    assert enforcer.check("writer", "secretsmanager", "GetSecretValue", {"SecretId": "local/CodeSecret"}) is None
    assert enforcer.check("writer", "secretsmanager", "GetSecretValue", {"SecretId": OTHER_SECRET_ARN}) is not None
    assert enforcer.check("writer", "kms", "Sign", {"KeyId": "alias/signing"}) is None
    assert enforcer.check("writer", "kms", "Sign", {"KeyId": "key-2"}) is not None


def test_grants_follow_the_resources_and_parameters_the_environment_names(
    enforcer: IamEnforcer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a table and a retired key the provisioned policy does not cover
    get_other = {"TableName": "other", "Key": {}}
    retired_key = {"KeyId": "key-0"}
    assert enforcer.check("writer", "dynamodb", "GetItem", get_other) is not None
    assert enforcer.check("writer", "kms", "GetPublicKey", retired_key) is not None

    # When the environment points TABLE_NAME (a Ref to Table) at it and sets the retired keys parameter
    monkeypatch.setenv("TABLE_NAME", "other")
    monkeypatch.setenv("RETIRED_KEYS", "key-0")

    # Then the policy is resolved as a stack deployed that way would have it
    assert enforcer.check("writer", "dynamodb", "GetItem", get_other) is None
    assert enforcer.check("writer", "dynamodb", "GetItem", {"TableName": "main", "Key": {}}) is not None
    assert enforcer.check("writer", "kms", "GetPublicKey", retired_key) is None


# ------------------------------------------------------------------------------------------ the hook


def test_a_denied_call_raises_access_denied_and_is_reported(enforcer: IamEnforcer, console: io.StringIO) -> None:
    # Given a DynamoDB client created after the hook was installed
    dynamodb = client("dynamodb")

    # When the writer deletes an item, which its policy does not allow
    with enforcer.acting_as("WriterFunction"), pytest.raises(ClientError) as raised:
        dynamodb.delete_item(TableName="main", Key={"pk": {"S": "x"}})

    # Then botocore raises the service's AccessDeniedException, and the console and the record name it
    error = raised.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "is not authorized to perform: dynamodb:DeleteItem on resource: " + TABLE_ARN in error["Message"]
    (line,) = [line for line in console.getvalue().splitlines() if line.startswith(DENIAL_MARKER)]
    assert line.startswith(f"{DENIAL_MARKER}: WriterFunction may not dynamodb:DeleteItem on {TABLE_ARN}")
    assert [denial.access.action for denial in enforcer.denials()] == ["dynamodb:DeleteItem"]


def test_a_denied_sns_publish_raises_snss_own_authorization_error(enforcer: IamEnforcer) -> None:
    # SNS answers an unauthorized call with AuthorizationError (403), not AccessDeniedException
    sns = client("sns")
    with enforcer.acting_as("PlainFunction"), pytest.raises(sns.exceptions.AuthorizationErrorException):
        sns.publish(PhoneNumber="+14155552671", Message="123456")


def test_an_allowed_call_goes_through_to_the_service(enforcer: IamEnforcer, console: io.StringIO) -> None:
    # Given a KMS client whose service answers Sign
    kms = client("kms")
    with Stubber(kms) as stub:
        request = {"KeyId": "key-1", "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"}
        stub.add_response("sign", {"Signature": b"sig", "KeyId": KEY_ARN}, request)

        # When the writer signs with its key
        with enforcer.acting_as("WriterFunction"):
            response = kms.sign(**request)

    # Then the call reached the service and nothing was denied
    assert response["Signature"] == b"sig"
    assert enforcer.denials() == []
    assert DENIAL_MARKER not in console.getvalue()


def test_calls_outside_a_handler_are_not_checked(enforcer: IamEnforcer) -> None:
    dynamodb = client("dynamodb")
    with Stubber(dynamodb) as stub:
        stub.add_response("delete_item", {}, {"TableName": "main", "Key": {"pk": {"S": "x"}}})
        dynamodb.delete_item(TableName="main", Key={"pk": {"S": "x"}})
    assert enforcer.denials() == []


def test_a_wrapped_handler_runs_under_its_functions_policy(enforcer: IamEnforcer) -> None:
    # Given a handler that reads the code secret
    secrets = client("secretsmanager")

    def handler(event: dict[str, Any], context: Any) -> Any:
        return secrets.get_secret_value(SecretId=CODE_SECRET_ARN)["SecretString"]

    # When it runs as the writer (allowed) and as the plain function (no policy)
    with Stubber(secrets) as stub:
        stub.add_response("get_secret_value", {"SecretString": "s"}, {"SecretId": CODE_SECRET_ARN})
        assert enforcer.wrap("WriterFunction", handler)({}, None) == "s"
    with pytest.raises(ClientError, match="AccessDeniedException"):
        enforcer.wrap("plain", handler)({}, None)


def test_acting_as_an_unknown_function_fails(enforcer: IamEnforcer) -> None:
    with pytest.raises(KeyError, match="no function"), enforcer.acting_as("NoSuchFunction"):
        pass


@pytest.mark.parametrize(("value", "enabled"), [("", True), ("on", True), ("off", False), ("0", False)])
def test_otp_local_iam_switches_enforcement(value: str, enabled: bool) -> None:
    assert enabled_by_environment({"OTP_LOCAL_IAM": value}) is enabled


# ---------------------------------------------------------------------------------- the real template


def test_every_policy_of_template_yaml_is_read() -> None:
    # Given the deployed template, resolved with placeholder resources
    template = Template.load()
    resolver = Resolver(template, environ={})

    # Then every function's policy is made of inline statements the local check understands
    for function_id in template.functions:
        policy = function_policy(template, resolver, function_id)
        assert policy.unsupported == (), function_id
        assert all(statement.effect in ("Allow", "Deny") for statement in policy.statements), function_id


def test_a_managed_policy_of_the_template_grants_its_statements() -> None:
    # Given the template, where the code key's read is a shared AWS::IAM::ManagedPolicy
    template = Template.load()
    resolver = Resolver(template, environ={})

    # When the policies of a function that attaches it and of one that does not are read
    sender = function_policy(template, resolver, "CreateChallengeFunction")
    reader = function_policy(template, resolver, "GetChallengeFunction")

    # Then only the attaching function holds its statement
    def sids(policy: Any) -> set[str]:
        return {statement.sid for statement in policy.statements if statement.sid}

    assert {"CodeKey", "SmsToPhoneNumbers", "SmsProviderCredentials"} <= sids(sender)
    assert "CodeKey" not in sids(reader)
