"""The template through the real tools: sam validate --lint, cfn-lint, checkov and sam build.

sam and checkov live in their own virtualenvs (.venv-sam, .venv-checkov; `make install` creates them and
`make test` puts them on PATH). A missing tool fails these tests unless OTP_SKIP_INFRA_TOOLS=1.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
TOOL_TIMEOUT_SECONDS = 300
BUILD_TIMEOUT_SECONDS = 1200

pytestmark = pytest.mark.infra


def _tool(name: str, fallback: Path) -> str:
    """Return the tool's path: the repo's own (pinned) install first, then PATH; fail when it is missing."""
    if fallback.is_file() and os.access(fallback, os.X_OK):
        return str(fallback)
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("OTP_SKIP_INFRA_TOOLS") == "1":
        pytest.skip(f"{name} not installed and OTP_SKIP_INFRA_TOOLS=1")
    pytest.fail(f"{name} not found on PATH or at {fallback}; run `make install`")


def _python313_dir() -> str:
    """Return a directory holding a working python3.13 (sam build needs the runtime's interpreter)."""
    candidates = [shutil.which("python3.13")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")), reverse=True)
    if sys.version_info[:2] == (3, 13):
        candidates.append(sys.executable)
    for candidate in filter(None, candidates):
        # A pyenv shim exists even when it cannot run 3.13, so try each one.
        result = subprocess.run(
            [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 13)"],
            capture_output=True,
            check=False,
        )
        if result.returncode == 0:
            return str(Path(candidate).parent)
    if os.environ.get("OTP_SKIP_INFRA_TOOLS") == "1":
        pytest.skip("python3.13 not found and OTP_SKIP_INFRA_TOOLS=1")
    pytest.fail("python3.13 not found (sam build needs it); install it, e.g. `pyenv install 3.13`")


def _environment(extra_path: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    env["SAM_CLI_TELEMETRY"] = "0"
    if extra_path:
        env["PATH"] = extra_path + os.pathsep + env.get("PATH", "")
    return env


def _run(command: list[str], *, timeout: int = TOOL_TIMEOUT_SECONDS, env: dict[str, str] | None = None) -> str:
    """Run command in the repo root and fail with its output unless it exits 0."""
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env or _environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = f"$ {' '.join(command)}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 0, output
    return output


@pytest.mark.timeout(TOOL_TIMEOUT_SECONDS + 60)
def test_sam_validate_lint() -> None:
    sam = _tool("sam", REPO_ROOT / ".venv-sam" / "bin" / "sam")
    _run([sam, "validate", "--lint", "--template", str(TEMPLATE)])


@pytest.mark.timeout(TOOL_TIMEOUT_SECONDS + 60)
def test_cfn_lint() -> None:
    cfn_lint = _tool("cfn-lint", Path(sys.executable).parent / "cfn-lint")
    _run([cfn_lint, str(TEMPLATE)])


@pytest.mark.timeout(TOOL_TIMEOUT_SECONDS + 60)
def test_checkov() -> None:
    checkov = _tool("checkov", REPO_ROOT / ".venv-checkov" / "bin" / "checkov")
    _run(
        [
            checkov,
            "-f",
            str(TEMPLATE),
            "--config-file",
            str(REPO_ROOT / ".checkov.yaml"),
            "--skip-download",
            "--quiet",
            "--compact",
        ]
    )


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS + 60)
def test_sam_build_produces_an_arm64_layer(tmp_path: Path) -> None:
    # Given sam and a python3.13 for the python3.13 build workflow
    sam = _tool("sam", REPO_ROOT / ".venv-sam" / "bin" / "sam")
    env = _environment(extra_path=_python313_dir())
    build_dir = tmp_path / "build"

    # When the template is built
    _run(
        [
            sam,
            "build",
            "--template",
            str(TEMPLATE),
            "--build-dir",
            str(build_dir),
            "--base-dir",
            str(REPO_ROOT),
        ],
        timeout=BUILD_TIMEOUT_SECONDS,
        env=env,
    )

    # Then the layer holds the core under python/ with aarch64 native extensions
    layer_root = build_dir / "OtpCoreLayer" / "python"
    assert (layer_root / "otp_core").is_dir(), sorted(p.name for p in build_dir.iterdir())
    assert (layer_root / "otp_core" / "settings.py").is_file()
    assert not (layer_root / "python").exists(), "layer nested under python/python/"
    native = sorted(path.name for path in (layer_root / "pydantic_core").glob("*.so"))
    assert native, "pydantic_core has no native extension"
    assert all("aarch64" in name for name in native), native

    # And it is precompiled, carries the X-Ray SDK but no botocore of its own (the runtime has one)
    assert (layer_root / "otp_core" / "__pycache__" / "service.cpython-313.pyc").is_file()
    assert (layer_root / "aws_xray_sdk").is_dir()
    assert not (layer_root / "botocore").exists()
    assert not (layer_root / "phonenumbers" / "geodata").exists(), "the lite phonenumbers build is expected"

    # And every function is built from its own folder without the layer's packages
    for function in (
        "CreateChallengeFunction",
        "VerifyChallengeFunction",
        "ResendChallengeFunction",
        "ClaimChallengeFunction",
        "GetChallengeFunction",
        "JwksFunction",
        "HealthFunction",
        "OpenApiFunction",
        "HostedPageFunction",
        "ClientPreflightFunction",
        "ApiKeyAuthorizerFunction",
    ):
        function_dir = build_dir / function
        assert function_dir.is_dir(), function
        assert not (function_dir / "pydantic_core").exists(), f"{function} bundles the layer's dependencies"
