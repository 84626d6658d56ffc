"""The Authsignal facade driven by the real npm ``@authsignal/node`` SDK (tests/e2e/node/authsignal.test.mjs, Node's
test runner) against the local stack: every server method the SDK has for SMS, and the errors it throws."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Api
from tests.e2e.test_apps import new_app  # noqa: F401 - the fixture: apps made for a test, deleted after it

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SUITE = Path(__file__).with_name("node") / "authsignal.test.mjs"
SDK = ROOT / "node_modules" / "@authsignal" / "node"
NUMBERS = 12  # more than the suite uses (one per enrolment or challenge)


def test_the_node_sdk_against_the_local_stack(api: Api, new_app: Any, new_phone: Any) -> None:  # noqa: F811
    node = shutil.which("node")
    if node is None or not SDK.is_dir():
        pytest.skip("node or @authsignal/node is missing: run `make install` (npm ci)")
    if not api.local:
        pytest.skip("the suite reads codes from the local stack's outbox")
    _, other_key = new_app()
    env = {
        **os.environ,
        "STACK_URL": api.url,
        "API_KEY": api.api_key,
        "OTHER_KEY": other_key,
        "PHONES": ",".join(new_phone() for _ in range(NUMBERS)),
    }
    run = subprocess.run(
        [node, "--test", "--test-reporter=tap", str(SUITE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,  # under pytest's own 300 s, so the report is kept
        check=False,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    # Every test of the suite ran and passed (a file that defined none would also exit 0)
    totals = dict(re.findall(r"^# (pass|fail|skipped|cancelled) (\d+)$", run.stdout, re.MULTILINE))
    defined = len(re.findall(r"^\s+it\(", SUITE.read_text(), re.MULTILINE))
    assert totals == {"pass": str(defined), "fail": "0", "skipped": "0", "cancelled": "0"}, report


def readme_node_block() -> str:
    """The README's Node lines of "Drop-in for Authsignal"."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Drop-in for Authsignal", 1)[1]
    node_part = section.split("\n## ", 1)[0].split("On a Node server", 1)[1]
    return node_part.split("```js\n", 1)[1].split("```", 1)[0]


def test_the_readmes_node_lines_run_as_printed(api: Api) -> None:
    node = shutil.which("node")
    if node is None or not SDK.is_dir():
        pytest.skip("node or @authsignal/node is missing: run `make install` (npm ci)")
    # Given the README's lines with their two constants set to this stack and its key
    block = readme_node_block()
    for name, value in {"API_KEY": api.api_key, "API_URL": api.url}.items():
        block, replaced = re.subn(
            rf'^const {name} = "[^"\n]*";', f"const {name} = {json.dumps(value)};", block, flags=re.M
        )
        assert replaced == 1, name
    # When they run, followed by a call of the SDK they made (from standard input, in the repository, so that the
    # package resolves; nothing is written)
    check = 'console.log(JSON.stringify(await authsignal.getUser({ userId: "readme-user" })));\n'
    run = subprocess.run(
        [node, "--input-type=module"],
        input=block + check,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then the SDK talked to the stack's facade with the app's key
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["isEnrolled"] is False
