"""The operator CLI (python -m otpadmin): argument parsing, the requests it builds, and what it prints.

No request leaves the process: a fake transport records each urllib Request and answers from a script.
"""

from __future__ import annotations

import argparse
import io
import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

import otpadmin
from otpadmin import Call, Console, main, parser, plan, setting

LOCAL = "http://127.0.0.1:3000"
DEPLOYED = "https://abc123.execute-api.eu-west-1.amazonaws.com/api"


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeTransport:
    """Answers each request with the next scripted (status, body) and records what was sent."""

    answers: list[tuple[int, Any]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    def __call__(self, request: urllib.request.Request, timeout: float) -> tuple[int, bytes]:
        data = request.data
        assert data is None or isinstance(data, bytes)
        self.sent.append(
            Sent(
                request.get_method(),
                request.full_url,
                {name.lower(): value for name, value in request.header_items()},
                json.loads(data) if data else None,
            )
        )
        status, body = self.answers.pop(0) if self.answers else (200, {})
        return status, b"" if body is None else json.dumps(body).encode()


def run(
    argv: Sequence[str], answers: list[tuple[int, Any]] | None = None, environ: dict[str, str] | None = None
) -> tuple[int, FakeTransport, str, str]:
    transport = FakeTransport(list(answers or []))
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, transport=transport, environ=environ or {}, console=Console(out, err))
    return status, transport, out.getvalue(), err.getvalue()


def planned(*argv: str) -> list[Call]:
    return plan(parser().parse_args(argv))


# ------------------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("codeLength=8", ("codeLength", 8)),
        ('allowedCountries=["GB","IE"]', ("allowedCountries", ["GB", "IE"])),
        ("appName=Shop", ("appName", "Shop")),  # not JSON: the plain string
        ('appName="42"', ("appName", "42")),  # JSON string: quoted digits stay a string
        ("senderId=null", ("senderId", None)),  # removes the override
        ("fraudGuardMode=monitor", ("fraudGuardMode", "monitor")),
        ('templates={"en": "{otp} is your code"}', ("templates", {"en": "{otp} is your code"})),
        ("appName=a=b", ("appName", "a=b")),  # only the first = separates
        ("appName=NaN", ("appName", "NaN")),  # not JSON numbers: strings
        ("appName=", ("appName", "")),
    ],
)
def test_a_setting_is_json_or_else_a_string(text: str, expected: tuple[str, Any]) -> None:
    assert setting(text) == expected


@pytest.mark.parametrize("text", ["codeLength", "=8", " =8"])
def test_a_setting_needs_a_name_and_an_equals_sign(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not name=value"):
        setting(text)


def test_a_malformed_setting_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # When a setting has no "="
    with pytest.raises(SystemExit) as exited:
        run(["apps", "set", "shop", "codeLength"])

    # Then argparse refuses it before any request
    assert exited.value.code == 2
    assert "is not name=value" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ requests


def test_apps_commands_build_the_contracts_requests() -> None:
    assert planned("apps", "list") == [Call("GET", "/v1/admin/apps")]
    assert planned("apps", "get", "shop-ios") == [Call("GET", "/v1/admin/apps/shop-ios")]
    assert planned("apps", "delete", "shop-ios") == [Call("DELETE", "/v1/admin/apps/shop-ios")]
    assert planned("apps", "rename", "shop-ios", "Shop for iOS") == [
        Call("PATCH", "/v1/admin/apps/shop-ios", {"name": "Shop for iOS"})
    ]
    assert planned("apps", "set", "shop-ios", "codeLength=8", "senderId=null") == [
        Call("PATCH", "/v1/admin/apps/shop-ios", {"settings": {"codeLength": 8, "senderId": None}})
    ]


def test_create_names_the_id_and_settings_only_when_given() -> None:
    assert planned("apps", "create", "--name", "Shop") == [Call("POST", "/v1/admin/apps", {"name": "Shop"})]
    assert planned("apps", "create", "--id", "shop-ios", "--name", "Shop", "--set", "codeLength=8") == [
        Call("POST", "/v1/admin/apps", {"name": "Shop", "appId": "shop-ios", "settings": {"codeLength": 8}})
    ]


def test_create_requires_a_name() -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["apps", "create", "--id", "shop-ios"])
    assert exited.value.code == 2


def test_a_setting_given_twice_is_refused_before_any_request() -> None:
    # When one command names a setting twice
    status, transport, _, err = run(["apps", "set", "shop", "codeLength=8", "codeLength=6"])

    # Then nothing is sent
    assert status == 2
    assert transport.sent == []
    assert "codeLength is given twice" in err


def test_keys_commands_build_the_contracts_requests() -> None:
    keys = "/v1/admin/apps/shop-ios/keys"
    assert planned("keys", "list", "shop-ios") == [Call("GET", keys)]
    assert planned("keys", "create", "shop-ios") == [Call("POST", keys, {})]
    assert planned("keys", "create", "shop-ios", "--description", "iOS") == [Call("POST", keys, {"description": "iOS"})]
    assert planned("keys", "revoke", "shop-ios", "key_0123456789abcdef") == [
        Call("DELETE", f"{keys}/key_0123456789abcdef")
    ]


def test_rotate_creates_first_and_revokes_the_old_key_only_when_asked() -> None:
    keys = "/v1/admin/apps/shop-ios/keys"
    assert planned("keys", "rotate", "shop-ios") == [Call("POST", keys, {})]
    assert planned("keys", "rotate", "shop-ios", "--description", "v2", "--revoke", "key_0123456789abcdef") == [
        Call("POST", keys, {"description": "v2"}),
        Call("DELETE", f"{keys}/key_0123456789abcdef"),
    ]


def test_path_segments_are_percent_encoded() -> None:
    # An ID with characters a path cannot hold stays one segment (the service answers 404 for it)
    assert planned("apps", "get", "a/b?c") == [Call("GET", "/v1/admin/apps/a%2Fb%3Fc")]
    assert planned("keys", "revoke", "app", "../x") == [Call("DELETE", "/v1/admin/apps/app/keys/..%2Fx")]


def test_a_request_carries_the_admin_key_and_json_only_with_a_body() -> None:
    # When a command with a body and one without are run against the local stack
    _, transport, _, _ = run(["apps", "rename", "shop", "Shop"], [(200, {"appId": "shop"})])
    _, listing, _, _ = run(["apps", "list"], [(200, {"apps": []})])

    # Then each names the URL, the method and the bearer key; only the body has a content type
    (patch,) = transport.sent
    assert (patch.method, patch.url) == ("PATCH", f"{LOCAL}/v1/admin/apps/shop")
    assert patch.headers["authorization"] == "Bearer local-admin-key"
    assert patch.headers["content-type"] == "application/json"
    assert patch.body == {"name": "Shop"}
    (get,) = listing.sent
    assert (get.method, get.url, get.body) == ("GET", f"{LOCAL}/v1/admin/apps", None)
    assert "content-type" not in get.headers
    assert get.headers["accept"] == "application/json"


# ------------------------------------------------------------------------------------- URL and key


def test_the_url_comes_from_the_flag_then_the_environment_then_the_local_stack() -> None:
    environ = {"OTP_API_URL": DEPLOYED + "/", "OTP_ADMIN_KEY": "from-env"}
    _, from_env, _, _ = run(["apps", "list"], environ=environ)
    _, from_flag, _, _ = run(["--url", "http://localhost:3001", "apps", "list"], environ=environ)
    _, default, _, _ = run(["apps", "list"])

    # The stage path of ApiUrl is kept; a trailing slash is dropped
    assert from_env.sent[0].url == f"{DEPLOYED}/v1/admin/apps"
    assert from_flag.sent[0].url == "http://localhost:3001/v1/admin/apps"
    assert default.sent[0].url == f"{LOCAL}/v1/admin/apps"


def test_the_key_comes_from_the_flag_then_the_environment() -> None:
    environ = {"OTP_API_URL": DEPLOYED, "OTP_ADMIN_KEY": "from-env"}
    _, from_env, _, _ = run(["apps", "list"], environ=environ)
    _, from_flag, _, _ = run(["--admin-key", "from-flag", "apps", "list"], environ=environ)

    assert from_env.sent[0].headers["authorization"] == "Bearer from-env"
    assert from_flag.sent[0].headers["authorization"] == "Bearer from-flag"


@pytest.mark.parametrize("url", ["http://localhost:3000", "http://127.0.0.1:4000/", "http://[::1]:3000"])
def test_the_local_stacks_key_is_the_default_only_for_a_local_url(url: str) -> None:
    _, transport, _, _ = run(["--url", url, "apps", "list"])
    assert transport.sent[0].headers["authorization"] == "Bearer local-admin-key"


def test_a_deployed_url_without_a_key_sends_nothing() -> None:
    # When a deployed stack is named without a key
    status, transport, _, err = run(["--url", DEPLOYED, "apps", "list"])

    # Then the well-known local key is not tried there
    assert status == 2
    assert transport.sent == []
    assert "OTP_ADMIN_KEY" in err
    assert "local-admin-key" not in err


@pytest.mark.parametrize("url", ["ftp://example.com", "file:///etc/passwd", "example.com"])
def test_only_http_urls_are_used(url: str) -> None:
    status, transport, _, err = run(["--url", url, "--admin-key", "k", "apps", "list"])
    assert status == 2
    assert transport.sent == []
    assert "http(s) URL" in err


# ---------------------------------------------------------------------------------------- answers


def test_an_answer_is_printed_as_json() -> None:
    record = {"appId": "shop", "name": "Shop", "settings": {}}
    status, _, out, _ = run(["apps", "get", "shop"], [(200, record)])
    assert status == 0
    assert json.loads(out) == record


def test_a_new_key_is_printed_once_with_a_warning_that_it_is_shown_only_once() -> None:
    created = {"keyId": "key_0123456789abcdef", "apiKey": "sk_secret", "createdAt": "2026-11-21T22:10:00Z"}
    status, _, out, err = run(["keys", "create", "shop"], [(201, created)])
    assert status == 0
    assert json.loads(out) == created
    assert "shown only this once" in err
    assert "sk_secret" not in err


def test_rotate_without_revoke_says_to_revoke_the_old_key_after_switching() -> None:
    created = {"keyId": "key_0123456789abcdef", "apiKey": "sk_new", "createdAt": "2026-11-21T22:10:00Z"}
    status, transport, out, err = run(["keys", "rotate", "shop"], [(201, created)])
    assert status == 0
    assert len(transport.sent) == 1
    assert json.loads(out)["apiKey"] == "sk_new"
    assert "then revoke the old one" in err


def test_rotate_with_revoke_revokes_the_old_key_after_the_new_one_exists() -> None:
    created = {"keyId": "key_1111111111111111", "apiKey": "sk_new", "createdAt": "2026-11-21T22:10:00Z"}
    status, transport, out, err = run(
        ["keys", "rotate", "shop", "--revoke", "key_0000000000000000"], [(201, created), (204, None)]
    )
    assert status == 0
    assert [(sent.method, sent.url.rsplit("/", 1)[-1]) for sent in transport.sent] == [
        ("POST", "keys"),
        ("DELETE", "key_0000000000000000"),
    ]
    assert json.loads(out)["apiKey"] == "sk_new"
    assert "key_0000000000000000 revoked" in err


def test_rotate_keeps_the_old_key_when_the_new_one_cannot_be_made() -> None:
    # When the app already holds 5 keys
    full = {"title": "Conflict", "status": 409, "code": "CONFLICT", "detail": "an app holds at most 5 keys"}
    status, transport, out, err = run(["keys", "rotate", "shop", "--revoke", "key_0000000000000000"], [(409, full)])

    # Then the old key is not revoked: the app is never left without a working key
    assert status == 1
    assert [sent.method for sent in transport.sent] == ["POST"]
    assert out == ""
    assert "409 CONFLICT" in err
    assert "at most 5 keys" in err


def test_a_204_prints_nothing_on_stdout() -> None:
    status, _, out, err = run(["apps", "delete", "shop"], [(204, None)])
    assert status == 0
    assert out == ""
    assert "shop deleted" in err


def test_a_problem_prints_its_title_detail_and_field_errors_and_exits_1() -> None:
    problem = {
        "type": "about:blank",
        "title": "Invalid request",
        "status": 400,
        "code": "INVALID_REQUEST",
        "detail": "the settings are invalid",
        "errors": [{"field": "settings.codeLength", "message": "Input should be less than or equal to 10"}],
    }
    status, _, out, err = run(["apps", "set", "shop", "codeLength=12"], [(400, problem)])
    assert status == 1
    assert out == ""
    assert "PATCH /v1/admin/apps/shop answered 400 INVALID_REQUEST: Invalid request" in err
    assert "the settings are invalid" in err
    assert "settings.codeLength: Input should be less than or equal to 10" in err


def test_a_non_json_error_body_is_shown_briefly() -> None:
    transport = FakeTransport()

    def bad_gateway(request: urllib.request.Request, timeout: float) -> tuple[int, bytes]:
        transport(request, timeout)
        return 502, b"<html>Bad Gateway</html>"

    err = io.StringIO()
    status = main(["apps", "list"], transport=bad_gateway, environ={}, console=Console(io.StringIO(), err))
    assert status == 1
    assert "answered 502" in err.getvalue()
    assert "Bad Gateway" in err.getvalue()


def test_an_unreachable_stack_exits_1_without_echoing_the_key() -> None:
    def refused(request: urllib.request.Request, timeout: float) -> tuple[int, bytes]:
        raise OSError("connection refused")

    err = io.StringIO()
    status = main(
        ["--admin-key", "very-secret", "apps", "list"],
        transport=refused,
        environ={},
        console=Console(io.StringIO(), err),
    )
    assert status == 1
    assert "cannot reach http://127.0.0.1:3000" in err.getvalue()
    assert "very-secret" not in err.getvalue()


def test_the_default_transport_is_urllib() -> None:
    # The CLI needs nothing beyond the standard library
    assert main.__kwdefaults__ is not None
    assert main.__kwdefaults__["transport"] is otpadmin.urllib_transport
