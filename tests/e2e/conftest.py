"""The HTTP contract over a real socket: against the local stack (a child process) or, when API_URL is set,
against a deployed stack (API_KEY holds its key; tests that read SMS from the local outbox are skipped)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.local.stack import spawn_local_stack

# Policy of the e2e stack: France is blocked so UNSUPPORTED_COUNTRY can be shown over HTTP.
E2E_POLICY = {"BLOCKED_COUNTRIES": "FR"}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Api:
    url: str
    api_key: str
    local: bool

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: str | None = "default",
    ) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - 127.0.0.1 or API_URL
        request.add_header("Content-Type", "application/json")
        if auth == "default":
            request.add_header("Authorization", f"Bearer {self.api_key}")
        elif auth is not None:
            request.add_header("Authorization", auth)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                status, response_headers, text = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, response_headers, text = error.code, dict(error.headers), error.read()
        return Reply(status, response_headers, json.loads(text) if text else None)

    def outbox(self, to: str) -> list[str]:
        if not self.local:
            pytest.skip("reading SMS needs the local stack's outbox")
        messages = self.call("GET", "/_local/outbox", auth=None).body["messages"]
        return [m["body"] for m in messages if m["to"] == to]

    def code(self, to: str) -> str:
        return self.outbox(to)[-1].split()[0]


@pytest.fixture(scope="session")
def api() -> Iterator[Api]:
    if os.environ.get("API_URL"):
        yield Api(os.environ["API_URL"].rstrip("/"), os.environ["API_KEY"], local=False)
        return
    with spawn_local_stack(env=E2E_POLICY) as stack:
        yield Api(stack.url, stack.api_key, local=True)


_suffix = iter(range(1000, 9999))


@pytest.fixture
def phone() -> str:
    """A fresh number per test so the per-number limits of one test never touch another."""
    return f"+1650254{next(_suffix):04d}"
