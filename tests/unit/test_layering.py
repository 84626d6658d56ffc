"""The dependency rules of docs/architecture.md, read from the source: a change that breaks them fails here."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "layers" / "otp_core"
# The use cases and rules: pure logic over ports, no SDKs, no wire models.
PURE = ["service", "mfa", "phone_verification", "authenticators", "policy", "records", "ports", "rules", "codes"]


def modules() -> dict[str, Path]:
    found = {}
    for base, root in ((CORE / "otp_core", CORE), (ROOT / "local", ROOT), (ROOT / "functions", ROOT)):
        for path in base.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path) -> Iterator[str]:
    """Every module a file imports, at module level or inside functions (lazy imports count too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def project_imports() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        graph[name] = {target for target in imports(path) if target in known}
    return graph


def test_no_module_imports_itself_back():
    # Given the import graph of the core, the functions and the local stack (lazy imports included)
    graph = project_imports()

    # Then it has no cycle
    visiting, done = set(), set()

    def visit(name: str, path: list[str]) -> None:
        if name in done:
            return
        assert name not in visiting, " -> ".join([*path, name])
        visiting.add(name)
        for target in graph.get(name, ()):
            visit(target, [*path, name])
        visiting.discard(name)
        done.add(name)

    for name in graph:
        visit(name, [])


def test_only_the_composition_root_wires_adapters_and_sms():
    graph = project_imports()
    for name, targets in graph.items():
        if not name.startswith("otp_core.") or name.startswith(("otp_core.adapters", "otp_core.sms")):
            continue
        wired = {t for t in targets if t.startswith(("otp_core.adapters", "otp_core.sms"))}
        assert not wired or name == "otp_core.runtime", (name, wired)


@pytest.mark.parametrize("module", PURE)
def test_use_cases_and_rules_import_no_sdk_and_no_wire_model(module):
    targets = set(imports(CORE / "otp_core" / f"{module}.py"))
    forbidden = {t for t in targets if t.split(".")[0] in {"boto3", "botocore", "urllib3", "jwt"}}
    forbidden |= {t for t in targets if t in {"otp_core.models", "otp_core.http", "otp_core.replies"}}
    assert not forbidden, forbidden


def test_the_product_never_imports_tests_and_the_layer_never_imports_the_local_stack():
    for name, path in modules().items():
        targets = set(imports(path))
        assert not any(t == "tests" or t.startswith("tests.") for t in targets), name
        if name.startswith(("otp_core", "functions")):
            assert not any(t == "local" or t.startswith("local.") for t in targets), name
