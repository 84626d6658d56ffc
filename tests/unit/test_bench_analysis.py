"""The benchmark's pure helpers: import-time parsing, call classification, targets, events and report verdicts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from local.bench.analysis import (
    ApiCall,
    CallCounts,
    Limit,
    Target,
    code_from_sms,
    count_calls,
    describe_calls,
    direct_imports,
    median,
    parse_importtime,
    ratio,
    top,
    wrong_code,
)
from local.bench.calls import CallRecorder, Request, build_event, load_event, route_event
from local.bench.sizes import package_size

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 | _io
import time:        50 |         50 |     botocore.compat
import time:       300 |        350 |   boto3
import time:      2000 |       2000 |   aws_xray_sdk.core
import time:        40 |       2390 | app
import time:        10 |         10 | json
"""


def test_importtime_lines_keep_their_nesting_level() -> None:
    # When
    lines = parse_importtime(IMPORTTIME)

    # Then
    assert [(line.module, line.level) for line in lines] == [
        ("_io", 0),
        ("botocore.compat", 2),
        ("boto3", 1),
        ("aws_xray_sdk.core", 1),
        ("app", 0),
        ("json", 0),
    ]
    assert lines[3].self_us == 2000
    assert lines[4].cumulative_us == 2390


def test_direct_imports_are_the_level_one_lines_before_the_module() -> None:
    # Given
    lines = parse_importtime(IMPORTTIME)

    # When
    children = direct_imports(lines, "app")

    # Then
    assert [line.module for line in children] == ["boto3", "aws_xray_sdk.core"]
    assert direct_imports(lines, "missing") == []


def test_top_sorts_by_cumulative_or_self_time() -> None:
    lines = parse_importtime(IMPORTTIME)

    assert [line.module for line in top(lines, 2)] == ["app", "aws_xray_sdk.core"]
    assert [line.module for line in top(lines, 2, by="self")] == ["aws_xray_sdk.core", "boto3"]


def test_median_and_ratio_of_nothing_are_nan() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert math.isnan(median([]))
    assert ratio(3.0, 2.0) == 1.5
    assert math.isnan(ratio(1.0, 0.0))


def test_calls_are_classified_by_kind() -> None:
    # Given
    calls = [
        ApiCall("secretsmanager", "GetSecretValue"),
        ApiCall("dynamodb", "GetItem"),
        ApiCall("dynamodb", "TransactWriteItems", 6),
        ApiCall("dynamodb", "PutItem"),
        ApiCall("sns", "Publish"),
        ApiCall("kms", "Sign"),
        ApiCall("sts", "GetCallerIdentity"),
    ]

    # When
    counts = count_calls(calls)

    # Then
    assert counts == CallCounts(
        reads=1, writes=2, write_items=7, sns_publishes=1, kms=1, secrets=1, other=("sts:GetCallerIdentity",)
    )
    assert counts.total == 7


def test_calls_are_described_with_repeats_folded() -> None:
    calls = [
        ApiCall("dynamodb", "GetItem"),
        ApiCall("dynamodb", "GetItem"),
        ApiCall("dynamodb", "TransactWriteItems", 3),
    ]

    assert describe_calls(calls) == "2x dynamodb:GetItem, dynamodb:TransactWriteItems(3 items)"
    assert describe_calls([]) == "none"


def test_a_target_reports_each_limit_it_misses() -> None:
    # Given
    target = Target((Limit("writes", 2), Limit("kms", 1, exactly=True)))

    # When
    met = target.misses(CallCounts(writes=2, kms=1))
    missed = target.misses(CallCounts(writes=3, kms=0))

    # Then
    assert met == []
    assert [str(limit) for limit in missed] == ["<= 2 table writes", "1 KMS call"]
    assert str(target) == "<= 2 table writes + 1 KMS call"
    assert str(Target()) == "-"


def test_the_code_is_the_first_word_of_the_default_sms() -> None:
    assert code_from_sms("042917 is your SMS OTP verification code. It expires in 10 minutes.") == "042917"
    with pytest.raises(ValueError, match="does not start with a code"):
        code_from_sms("Your code is 042917")


def test_a_wrong_code_differs_and_keeps_its_length() -> None:
    assert wrong_code("000123") == "000124"
    assert wrong_code("999999") == "000000"


def test_an_event_carries_the_request_changes_and_a_new_request_id() -> None:
    # Given
    original = load_event("verify_challenge")

    # When
    event = build_event(
        original,
        Request(body={"code": "123456"}, challenge_id="abc", headers={"Idempotency-Key": "k"}),
    )

    # Then
    assert json.loads(event["body"]) == {"code": "123456"}
    assert event["pathParameters"] == {"challengeId": "abc"}
    assert event["path"] == "/v1/challenges/abc/verify"
    assert event["headers"]["Idempotency-Key"] == "k"
    assert event["multiValueHeaders"]["Idempotency-Key"] == ["k"]
    assert event["requestContext"]["requestId"] != original["requestContext"]["requestId"]
    assert original["pathParameters"] != {"challengeId": "abc"}


def test_an_authorizer_event_gets_the_token() -> None:
    event = build_event(load_event("authorizer"), Request(token="Bearer k"))

    assert event["authorizationToken"] == "Bearer k"


def test_a_route_event_fills_path_parameters() -> None:
    # When
    event = route_event("DELETE", "/v1/users/{userId}/authenticators/{authenticatorId}")

    # Then
    parameters = event["pathParameters"]
    assert set(parameters) == {"userId", "authenticatorId"}
    assert event["path"] == f"/v1/users/{parameters['userId']}/authenticators/{parameters['authenticatorId']}"
    assert event["httpMethod"] == "DELETE"
    assert event["requestContext"]["resourcePath"] == "/v1/users/{userId}/authenticators/{authenticatorId}"
    assert event["body"] is None


def test_a_package_size_sums_zipped_bytes_per_top_level_entry(tmp_path: Path) -> None:
    # Given a layer-shaped directory
    (tmp_path / "python" / "big").mkdir(parents=True)
    (tmp_path / "python" / "big" / "data.txt").write_text("x" * 100_000)
    (tmp_path / "python" / "big-1.0.dist-info").mkdir()
    (tmp_path / "python" / "big-1.0.dist-info" / "METADATA").write_text("Name: big\n")
    (tmp_path / "python" / "small.py").write_text("VALUE = 1\n")

    # When
    size = package_size("layer", tmp_path, group_under="python")

    # Then
    assert size.files == 3
    assert size.unzipped == 100_000 + len("Name: big\n") + len("VALUE = 1\n")
    assert 0 < size.zipped < size.unzipped
    assert set(size.zipped_by_entry) == {"big", "small"}
    assert size.largest(1)[0][0] == "big"


def test_a_call_names_the_item_kind_but_no_identifier() -> None:
    # Given the body botocore builds for an UpdateItem on a challenge
    recorder = CallRecorder()
    model = SimpleNamespace(name="UpdateItem", service_model=SimpleNamespace(service_name="dynamodb"))
    body = json.dumps({"TableName": "t", "Key": {"pk": {"S": "CHL#3f2b8c1e"}, "sk": {"S": "CHL"}}})

    # When
    with recorder.record() as calls:
        recorder(model=model, params={"body": body.encode()})

    # Then
    assert [str(call) for call in calls] == ["dynamodb:UpdateItem[CHL]"]


def test_a_transaction_counts_its_items() -> None:
    recorder = CallRecorder()
    model = SimpleNamespace(name="TransactWriteItems", service_model=SimpleNamespace(service_name="dynamodb"))
    body = json.dumps({"TransactItems": [{"Put": {}}, {"Update": {}}, {"ConditionCheck": {}}]})

    with recorder.record() as calls:
        recorder(model=model, params={"body": body})
    recorder(model=model, params={"body": body})  # not recording any more

    assert calls == [ApiCall("dynamodb", "TransactWriteItems", 3)]
