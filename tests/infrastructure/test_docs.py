"""The contract travels with the code: every route of template.yaml is documented in docs/api.md and in the
contract it was copied from (../shared/api.md, beside the repository in the development workspace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cfnlint.decode import decode_str

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs" / "api.md"
CONTRACT = REPO_ROOT.parent / "shared" / "api.md"
# "POST /v1/challenges", and the contract's shorthand "`GET` and `PUT /v1/admin/fraud/safe-list`".
_ROUTE = re.compile(r"\b((?:GET|POST|PUT|PATCH|DELETE)(?:`? and `?(?:GET|POST|PUT|PATCH|DELETE))*) (/[^\s`?]*)")


def template_routes() -> set[tuple[str, str]]:
    parsed, errors = decode_str((REPO_ROOT / "template.yaml").read_text(encoding="utf-8"))
    assert not errors, [str(error) for error in errors]
    routes = set()
    for resource in parsed["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    return routes


def documented_routes(text: str) -> set[tuple[str, str]]:
    routes = set()
    for methods, path in _ROUTE.findall(text):
        for method in re.findall(r"GET|POST|PUT|PATCH|DELETE", methods):
            routes.add((method, path.rstrip(".,:;")))
    return routes


def test_the_route_parser_reads_the_contracts_forms():
    text = "### POST /v1/challenges — start\n- `GET` and `PUT /v1/admin/fraud/safe-list?appId=` → `200`"
    assert documented_routes(text) == {
        ("POST", "/v1/challenges"),
        ("GET", "/v1/admin/fraud/safe-list"),
        ("PUT", "/v1/admin/fraud/safe-list"),
    }


def test_every_template_route_is_in_the_repositorys_api_reference():
    missing = template_routes() - documented_routes(DOCS.read_text(encoding="utf-8"))
    assert not missing, f"routes of template.yaml missing from docs/api.md: {sorted(missing)}"


def test_every_template_route_is_in_the_contract():
    if not CONTRACT.exists():
        pytest.skip("the contract (../shared/api.md) is not beside this checkout")
    missing = template_routes() - documented_routes(CONTRACT.read_text(encoding="utf-8"))
    assert not missing, f"routes of template.yaml missing from the contract: {sorted(missing)}"


def test_the_reference_is_the_contracts_version():
    if not CONTRACT.exists():
        pytest.skip("the contract (../shared/api.md) is not beside this checkout")
    version = re.search(r"^# HTTP API contract, (v[0-9.]+)$", CONTRACT.read_text(encoding="utf-8"), re.MULTILINE)
    assert version is not None
    assert f"# HTTP API contract, {version.group(1)}\n" in DOCS.read_text(encoding="utf-8"), (
        "docs/api.md is not the contract's current version: copy ../shared/api.md again"
    )
