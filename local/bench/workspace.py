"""The interpreter and the precompiled copies of the built code that the measurements run.

``.aws-sam/build`` is left as ``sam build`` made it (it is what ``sam deploy`` zips); the measured copies live
next to it: ``.aws-sam/bench-functions/<Function>`` and ``.aws-sam/bench-layer/<key>/python``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from local import REPO_ROOT
from local.template import Template

AWS_SAM: Final = REPO_ROOT / ".aws-sam"
BUILD_DIR: Final = AWS_SAM / "build"
LAYER_CACHE: Final = AWS_SAM / "bench-layer"
FUNCTION_COPIES: Final = AWS_SAM / "bench-functions"
LAYER_TYPE: Final = "AWS::Serverless::LayerVersion"
REGION: Final = "us-east-1"
# Lambda's names for the build architectures.
_MACHINES: Final = {"arm64": "aarch64", "x86_64": "x86_64"}


@dataclass(frozen=True)
class Interpreter:
    """A python3.13 executable, its full version and the machine it runs on (``x86_64``, ``aarch64``)."""

    path: Path
    version: str
    machine: str


def find_python(explicit: str | None = None) -> Interpreter:
    """The python3.13 to run every measurement with: ``explicit``, then PATH, then pyenv's newest 3.13.

    pyenv's shim may be on PATH and still fail ("command exists in these versions"), so each candidate is
    run once to prove it works.
    """
    candidates: list[str | None] = [explicit] if explicit else []
    candidates.append(shutil.which("python3.13"))
    candidates.extend(sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")), reverse=True))
    for candidate in filter(None, candidates):
        try:
            probe = subprocess.run(  # noqa: S603 - an interpreter found on PATH or in pyenv, asked its version
                [candidate, "-I", "-c", "import platform, sys; print(platform.python_version(), platform.machine())"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        fields = probe.stdout.split()
        if probe.returncode == 0 and len(fields) == 2 and fields[0].startswith("3.13."):
            return Interpreter(Path(candidate), fields[0], fields[1])
        if explicit and candidate == explicit:
            raise RuntimeError(f"{explicit} is not a working python3.13")
    raise RuntimeError("no working python3.13 found (PATH or ~/.pyenv/versions/3.13*); pass --python")


@dataclass(frozen=True)
class Workspace:
    """Precompiled copies of the built functions and layer, runnable by ``python``.

    Attributes
    ----------
    functions:
        Function logical id to its precompiled copy (the ``/var/task`` of the measurement).
    layer:
        The layer's ``python`` directory (the ``/opt/python``), precompiled, for the host's architecture.
    layer_source:
        How the layer copy was made, for the report.
    """

    python: Interpreter
    functions: dict[str, Path]
    layer: Path
    layer_source: str


def layer_id(template: Template) -> str:
    """The logical id of the template's one layer (the benchmark assumes a single shared layer)."""
    layers = sorted(template.resources_of_type(LAYER_TYPE))
    if len(layers) != 1:
        raise RuntimeError(f"expected exactly one {LAYER_TYPE} in the template, found {layers}")
    return layers[0]


def built_function_dirs(template: Template, build_dir: Path = BUILD_DIR) -> dict[str, Path]:
    """The build output directory of every function that has one (see :func:`unbuilt_functions`)."""
    dirs = {logical_id: build_dir / logical_id for logical_id in sorted(template.functions)}
    built = {logical_id: path for logical_id, path in dirs.items() if (path / "app.py").is_file()}
    if not built:
        raise FileNotFoundError(f"no function is built in {build_dir}; run `make build` first")
    return built


def unbuilt_functions(template: Template, build_dir: Path = BUILD_DIR) -> list[str]:
    """Functions of the template without build output (the template changed after ``sam build``)."""
    return sorted(set(template.functions) - set(built_function_dirs(template, build_dir)))


def built_layer_dir(template: Template, build_dir: Path = BUILD_DIR) -> Path:
    """The built layer's ``python`` directory."""
    path = build_dir / layer_id(template) / "python"
    if not path.is_dir():
        raise FileNotFoundError(f"not built: {path}; run `make build` first")
    return path


def prepare(template: Template, python: Interpreter, build_dir: Path = BUILD_DIR) -> Workspace:
    """Copy and precompile the built functions and layer (reinstalling the layer for a foreign architecture)."""
    layer, source = _layer_copy(template, python, build_dir)
    _compile(python, layer)
    shutil.rmtree(FUNCTION_COPIES, ignore_errors=True)
    functions: dict[str, Path] = {}
    for logical_id, built in built_function_dirs(template, build_dir).items():
        copy = FUNCTION_COPIES / logical_id
        shutil.copytree(built, copy, ignore=shutil.ignore_patterns("__pycache__"))
        functions[logical_id] = copy
    _compile(python, FUNCTION_COPIES)
    return Workspace(python, functions, layer, source)


def _layer_copy(template: Template, python: Interpreter, build_dir: Path) -> tuple[Path, str]:
    layer = layer_id(template)
    built = built_layer_dir(template, build_dir)
    metadata = template.resources[layer].get("Metadata") or {}
    build_machine = _MACHINES.get(str(metadata.get("BuildArchitecture", "x86_64")), "x86_64")
    if build_machine == python.machine:
        target = LAYER_CACHE / "native" / "python"
        shutil.rmtree(target.parent, ignore_errors=True)
        shutil.copytree(built, target, symlinks=True)
        return target, f"the built layer ({build_machine}, copied from {built.relative_to(REPO_ROOT)})"

    requirements = _layer_content(template, layer) / "requirements.txt"
    makefile = requirements.with_name("Makefile")
    digest = hashlib.sha256(requirements.read_bytes() + makefile.read_bytes()).hexdigest()[:16]
    key = f"{digest}-cp{python.version.replace('.', '')}-{python.machine}"
    target = LAYER_CACHE / key / "python"
    if not (LAYER_CACHE / key / ".complete").is_file():
        _pip_install(python, requirements, LAYER_CACHE / key)
        cached = "freshly installed"
    else:
        cached = "cached"
    # The project's own packages come from the build, so the copy runs exactly the built code.
    for entry in _own_entries(template, layer):
        shutil.rmtree(target / entry, ignore_errors=True)
        shutil.copytree(built / entry, target / entry, ignore=shutil.ignore_patterns("__pycache__"))
    description = (
        f"a {python.machine} copy: the layer's own Makefile build for this platform, plus the runtime's boto3, with "
        f"python {python.version} ({cached} in {target.parent.relative_to(REPO_ROOT)}) plus the built "
        f"{', '.join(_own_entries(template, layer))}; the built layer's {build_machine} extensions "
        f"(pydantic_core, cryptography, ...) cannot load on this {python.machine} machine"
    )
    return target, description


def _layer_content(template: Template, layer: str) -> Path:
    properties = template.resources[layer].get("Properties") or {}
    return REPO_ROOT / str(properties.get("ContentUri", ".")).strip("/")


def _own_entries(template: Template, layer: str) -> list[str]:
    """Top-level entries of the layer's ContentUri that the build copies in (``otp_core``)."""
    content = _layer_content(template, layer)
    skip = {"requirements.txt", "Makefile", "__pycache__"}
    return sorted(
        entry.name for entry in content.iterdir() if entry.name not in skip and not entry.name.startswith(".")
    )


def _pip_install(python: Interpreter, requirements: Path, destination: Path) -> None:
    """Build the layer with its own Makefile for this machine, and add the boto3 the Lambda runtime provides."""
    staging = destination.with_name(destination.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    runtime_boto3 = next(
        line.strip()
        for line in (REPO_ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
        if line.startswith("boto3==")
    )
    commands = [
        [
            "make",
            "--no-print-directory",
            "-C",
            str(requirements.parent),
            "build-OtpCoreLayer",
            f"ARTIFACTS_DIR={staging.resolve()}",
            f"PYTHON={python.path}",
            "PLATFORM=",
        ],
        [
            str(python.path),
            *("-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"),
            *("--target", str(staging / "python"), runtime_boto3),
        ],
    ]
    for command in commands:
        result = subprocess.run(  # noqa: S603 - pip of the chosen interpreter, with our requirements file
            command, capture_output=True, text=True, timeout=600, check=False, env=clean_env()
        )
        if result.returncode != 0:
            raise RuntimeError(f"the layer build failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    (staging / ".complete").write_text(requirements.read_text(encoding="utf-8"), encoding="utf-8")
    shutil.rmtree(destination, ignore_errors=True)
    staging.rename(destination)


def _compile(python: Interpreter, path: Path) -> None:
    # Some packages ship files that are never imported and do not compile; compileall reports and skips them.
    subprocess.run(  # noqa: S603 - compileall of the chosen interpreter on our copies
        [str(python.path), "-m", "compileall", "-q", "-j", "0", str(path)],
        capture_output=True,
        timeout=600,
        check=False,
        env=clean_env(),
    )


def clean_env() -> dict[str, str]:
    """This process's environment without ``PYTHON*`` variables (``PYTHONDONTWRITEBYTECODE`` above all)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}


def lambda_env(
    function_env: Mapping[str, str], *, memory_size: int, task_root: Path | None, home: Path
) -> dict[str, str]:
    """The environment Lambda gives a function, without the variables the measurement leaves unset.

    ``AWS_LAMBDA_FUNCTION_NAME`` and ``POWERTOOLS_TRACE_DISABLED`` are never set; ``LAMBDA_TASK_ROOT`` only
    with ``task_root`` (Lambda-like mode). Credentials are variables, as in Lambda, so botocore never asks
    an instance metadata endpoint, and no shared config file is read.
    """
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(home),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_size),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        **function_env,
    }
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT"):
        env.pop(name, None)
    if task_root is not None:
        env["LAMBDA_TASK_ROOT"] = str(task_root)
    return env
