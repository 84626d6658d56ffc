"""The browser client (client/): its unit tests under Node's test runner, and a committed build of its source.

client/dist/sms-otp.js is committed because the stack serves it as a static asset, so a build that lags its
source is a bug these tests catch. Node and TypeScript come from `make install` (npm ci from
package-lock.json). Without node the tests skip on a developer's machine and fail in CI (CI is set).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DIST = REPO_ROOT / "client" / "dist"
ARTIFACTS = ("sms-otp.js", "sms-otp.d.ts")
NODE_TIMEOUT_SECONDS = 120


def _executable(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} not found on PATH: the browser client's tests need Node.js (then `make install`)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _run(command: list[str]) -> str:
    """Run command in the repository root and fail with its output unless it exits 0."""
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=False,
    )
    output = f"$ {' '.join(command)}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 0, output
    return output


def test_client_unit_tests_pass() -> None:
    # Given
    _executable("node")
    npm = _executable("npm")

    # When
    output = _run([npm, "run", "--silent", "client:test"])

    # Then: the runner's summary ("# pass 76" in TAP, the same after an info sign in spec) counts tests, and none failed
    passed = re.search(r"^\S+ pass (\d+)$", output, re.MULTILINE)
    failed = re.search(r"^\S+ fail (\d+)$", output, re.MULTILINE)
    assert passed is not None and int(passed.group(1)) > 0, output
    assert failed is not None and int(failed.group(1)) == 0, output


def test_committed_build_is_built_from_the_current_source(tmp_path: Path) -> None:
    # Given
    node = _executable("node")
    assert (REPO_ROOT / "node_modules" / "typescript").is_dir(), "typescript is not installed: run `make install`"

    # When
    _run([node, "client/build.mjs", "--out-dir", str(tmp_path)])

    # Then
    for name in ARTIFACTS:
        committed = DIST / name
        assert committed.is_file(), f"{committed} is missing: run `make client` and commit client/dist"
        assert committed.read_bytes() == (tmp_path / name).read_bytes(), (
            f"client/dist/{name} is not built from client/src: run `make client` and commit client/dist"
        )


def test_built_module_has_no_runtime_dependencies() -> None:
    # Given
    module = (DIST / "sms-otp.js").read_text(encoding="utf-8")

    # Then: no static or dynamic import and no require; the page loads this one file
    assert re.search(r"^\s*(import|export .* from)\b|\bimport\(|\brequire\(", module, re.MULTILINE) is None
    assert "export function createClient" in module
