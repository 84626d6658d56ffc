"""Operator CLI of the ``/v1/admin/apps`` routes: apps, their settings and their API keys.

Standard library only, so it runs from a checkout with any Python 3.11+ (no virtual environment)::

    python -m otpadmin apps list
    python -m otpadmin --url "$API_URL" apps create --id shop-ios --name "Shop iOS" --set codeLength=8
    python -m otpadmin keys rotate shop-ios --description "iOS backend"

The base URL is ``--url``, else ``OTP_API_URL``, else the local stack (``http://127.0.0.1:3000``); the admin
key is ``--admin-key``, else ``OTP_ADMIN_KEY``, else the local stack's well-known ``local-admin-key`` (only for
a local URL: a deployed stack's key is never guessed). Answers are printed as JSON on stdout; a problem
response is printed on stderr and exits 1.

Every request is built by :func:`plan` (pure: the tests check it without a network) and sent by a transport,
``urllib`` unless one is passed in.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

DEFAULT_URL = "http://127.0.0.1:3000"
LOCAL_ADMIN_KEY = "local-admin-key"  # the local stack's well-known key (OTP_LOCAL_ADMIN_KEY changes it there)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
ENV_URL = "OTP_API_URL"
ENV_KEY = "OTP_ADMIN_KEY"
TIMEOUT_SECONDS = 30.0
USER_AGENT = "otpadmin/1"


class UsageError(Exception):
    """The command line cannot be turned into requests (exit 2, like argparse's own errors)."""


@dataclass(frozen=True)
class Call:
    """One request of a command: ``path`` below the base URL, ``body`` sent as JSON when not None."""

    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Answer:
    """What the service answered: the status and the JSON body (None for an empty or non-JSON body)."""

    status: int
    body: Any = None
    text: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


# (request, timeout) -> (status, body bytes); errors of the connection itself raise OSError (URLError is one).
Transport = Callable[[urllib.request.Request, float], tuple[int, bytes]]


def urllib_transport(request: urllib.request.Request, timeout: float) -> tuple[int, bytes]:
    """Send with urllib; an HTTP error status is an answer like any other, not an exception."""
    try:
        # The URL is the operator's own --url or OTP_API_URL, and build() refuses schemes other than http(s).
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), error.read()


# ----------------------------------------------------------------------------------------- arguments


def setting(text: str) -> tuple[str, Any]:
    """``name=value``: the value as JSON (``8``, ``true``, ``["GB"]``, ``null``), else as the plain string.

    ``null`` removes an override (PATCH). NaN and Infinity are not JSON, so they stay strings.
    """
    name, equals, raw = text.partition("=")
    name = name.strip()
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not name=value")
    try:
        value = json.loads(raw, parse_constant=_not_json)
    except ValueError:
        value = raw
    return name, value


def _not_json(constant: str) -> Any:
    raise ValueError(constant)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m otpadmin",
        description="Manage the apps and API keys of an SMS OTP stack (the /v1/admin/apps routes).",
        epilog=(
            f"URL: --url, else ${ENV_URL}, else {DEFAULT_URL} (the local stack). Admin key: --admin-key, else "
            f"${ENV_KEY}, else {LOCAL_ADMIN_KEY} for a local URL only."
        ),
    )
    top.add_argument("--url", help=f"base URL of the API (the stack output ApiUrl; default ${ENV_URL} or local)")
    top.add_argument(
        "--admin-key", metavar="KEY", help=f"the admin key (default ${ENV_KEY}; prefer it: a flag shows in ps)"
    )
    areas = top.add_subparsers(dest="area", required=True, metavar="{apps,keys}")

    apps = areas.add_parser("apps", help="list, read, create, change and delete apps")
    app_commands = apps.add_subparsers(dest="command", required=True)
    app_commands.add_parser("list", help="every app, default included")
    get = app_commands.add_parser("get", help="one app's record")
    get.add_argument("app")
    create = app_commands.add_parser("create", help="create an app")
    create.add_argument("--id", dest="app_id", help="its ID (1-64 of [a-z0-9-]; generated when absent)")
    create.add_argument("--name", required=True, help="its name (1-100 characters)")
    create.add_argument(
        "--set",
        dest="settings",
        action="append",
        type=setting,
        default=[],
        metavar="NAME=JSON",
        help='a setting (repeatable), e.g. codeLength=8 or allowedCountries=\'["GB","IE"]\'',
    )
    change = app_commands.add_parser("set", help="change settings key by key (NAME=null removes an override)")
    change.add_argument("app")
    change.add_argument("settings", nargs="+", type=setting, metavar="NAME=JSON")
    rename = app_commands.add_parser("rename", help="rename an app")
    rename.add_argument("app")
    rename.add_argument("name")
    delete = app_commands.add_parser("delete", help="delete an app for good (its keys stop working)")
    delete.add_argument("app")

    keys = areas.add_parser("keys", help="list, create, revoke and rotate an app's API keys")
    key_commands = keys.add_subparsers(dest="command", required=True)
    listing = key_commands.add_parser("list", help="an app's keys (never their secrets)")
    listing.add_argument("app")
    made = key_commands.add_parser("create", help="a new key (its secret is shown once)")
    made.add_argument("app")
    made.add_argument("--description", help="what the key is for (up to 200 characters)")
    revoke = key_commands.add_parser("revoke", help="revoke a key (refused within 60 seconds)")
    revoke.add_argument("app")
    revoke.add_argument("key_id", metavar="KEYID")
    rotate = key_commands.add_parser("rotate", help="create a new key, then (with --revoke) revoke an old one")
    rotate.add_argument("app")
    rotate.add_argument("--description", help="what the new key is for")
    rotate.add_argument("--revoke", dest="old_key_id", metavar="KEYID", help="revoke this key once the new one exists")
    return top


# ------------------------------------------------------------------------------------------ requests


def _app(app_id: str) -> str:
    return "/v1/admin/apps/" + quote(app_id, safe="")


def _settings(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise UsageError(f"setting {name} is given twice")
        found[name] = value
    return found


def plan(args: argparse.Namespace) -> list[Call]:
    """The requests of a parsed command line, in order (rotate with --revoke: create, then revoke)."""
    area, command = args.area, args.command
    if area == "apps":
        if command == "list":
            return [Call("GET", "/v1/admin/apps")]
        if command == "get":
            return [Call("GET", _app(args.app))]
        if command == "create":
            body: dict[str, Any] = {"name": args.name}
            if args.app_id is not None:
                body["appId"] = args.app_id
            if args.settings:
                body["settings"] = _settings(args.settings)
            return [Call("POST", "/v1/admin/apps", body)]
        if command == "set":
            return [Call("PATCH", _app(args.app), {"settings": _settings(args.settings)})]
        if command == "rename":
            return [Call("PATCH", _app(args.app), {"name": args.name})]
        if command == "delete":
            return [Call("DELETE", _app(args.app))]
    if area == "keys":
        keys = _app(args.app) + "/keys"
        if command == "list":
            return [Call("GET", keys)]
        if command in ("create", "rotate"):
            new = Call("POST", keys, {"description": args.description} if args.description is not None else {})
            old = getattr(args, "old_key_id", None)
            return [new] if old is None else [new, Call("DELETE", f"{keys}/{quote(old, safe='')}")]
        if command == "revoke":
            return [Call("DELETE", f"{keys}/{quote(args.key_id, safe='')}")]
    raise UsageError(f"unknown command {area} {command}")


def base_url(flag: str | None, environ: Mapping[str, str]) -> str:
    """``--url``, else ``OTP_API_URL``, else the local stack; an http(s) URL, without a trailing slash."""
    url = (flag or environ.get(ENV_URL) or DEFAULT_URL).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url must be an http(s) URL such as {DEFAULT_URL}")
    return url


def admin_key(flag: str | None, url: str, environ: Mapping[str, str]) -> str:
    """``--admin-key``, else ``OTP_ADMIN_KEY``, else the local stack's well-known key for a local URL."""
    key = flag or environ.get(ENV_KEY)
    if key:
        return key.strip()
    if urlsplit(url).hostname in LOCAL_HOSTS:
        return LOCAL_ADMIN_KEY
    raise UsageError(
        f"no admin key for {url}: set {ENV_KEY} (see docs/apps.md: the stack output AdminKeySecretArn names its secret)"
    )


def build(call: Call, url: str, key: str) -> urllib.request.Request:
    """The HTTP request of one call."""
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json", "User-Agent": USER_AGENT}
    data = None
    if call.body is not None:
        data = json.dumps(call.body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    return urllib.request.Request(url + call.path, data=data, headers=headers, method=call.method)  # noqa: S310


def answer(status: int, raw: bytes) -> Answer:
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    return Answer(status, body, text)


# ------------------------------------------------------------------------------------------- running


@dataclass
class Console:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def json(self, value: Any) -> None:
        print(json.dumps(value, indent=2, ensure_ascii=False), file=self.out)

    def say(self, text: str) -> None:
        print(text, file=self.err)

    def problem(self, call: Call, found: Answer) -> None:
        body = found.body if isinstance(found.body, dict) else {}
        title = body.get("title") or "request failed"
        code = f" {body['code']}" if body.get("code") else ""
        self.say(f"error: {call.method} {call.path} answered {found.status}{code}: {title}")
        if body.get("detail"):
            self.say(f"  {body['detail']}")
        for error in body.get("errors") or []:
            if isinstance(error, dict):
                self.say(f"  {error.get('field', '?')}: {error.get('message', '')}")
        if not body and found.text.strip():
            self.say(f"  {found.text.strip()[:500]}")


def _done(args: argparse.Namespace, call: Call, found: Answer, console: Console) -> None:
    """Print one successful answer, with what the operator must know about it."""
    if found.body is not None:
        console.json(found.body)
    if call.method == "POST" and call.path.endswith("/keys"):
        console.say(
            "The apiKey above is shown only this once and stored only as a hash: put it in your secret store now."
        )
        if args.command == "rotate" and getattr(args, "old_key_id", None) is None:
            console.say(
                "Switch your servers to the new key, then revoke the old one "
                f"(python -m otpadmin keys list {args.app}; python -m otpadmin keys revoke {args.app} KEYID)."
            )
    elif call.method == "DELETE" and "/keys/" in call.path:
        console.say(f"Key {call.path.rsplit('/', 1)[-1]} revoked: it is refused within 60 seconds.")
    elif call.method == "DELETE":
        console.say(f"App {args.app} deleted: its keys are refused within 60 seconds; its ID is never reused.")


def main(
    argv: Sequence[str] | None = None,
    *,
    transport: Transport = urllib_transport,
    environ: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> int:
    """Run one command; returns the exit status (0 done, 1 the service refused or was unreachable, 2 usage)."""
    environ = os.environ if environ is None else environ
    console = console or Console()
    top = parser()
    args = top.parse_args(argv)
    try:
        url = base_url(args.url, environ)
        key = admin_key(args.admin_key, url, environ)
        calls = plan(args)
    except UsageError as error:
        top.print_usage(console.err)
        console.say(f"error: {error}")
        return 2
    for call in calls:
        try:
            status, raw = transport(build(call, url, key), TIMEOUT_SECONDS)
        except OSError as error:
            reason = getattr(error, "reason", error)
            console.say(f"error: cannot reach {url}: {reason}")
            return 1
        found = answer(status, raw)
        if not found.ok:
            console.problem(call, found)
            return 1
        _done(args, call, found, console)
    return 0
