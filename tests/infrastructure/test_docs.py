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
_METHOD = r"(?:GET|POST|PUT|PATCH|DELETE)"
# Read in the order they appear: "POST /v1/challenges", and the contract's shorthands "`GET` and `PUT
# /v1/admin/fraud/safe-list`" (several methods on one path), "`GET …/keys`" (a path relative to the last full
# path) and "`DELETE` → `204`" (a bare method: the path just mentioned).
_ROUTE = re.compile(
    rf"\b(?P<methods>{_METHOD}(?:`? and `?{_METHOD})*) (?P<relative>…|\.\.\.)?(?P<path>/[^\s`?]*)"
    rf"|`(?P<bare>{_METHOD})` →"
)


# Routes the contract names in prose, not as "METHOD /path": the hosted page is the `url` of /v1/track, and its
# script, style and browser client are "the hosted page's static routes"; the client routes' OPTIONS are their
# "CORS preflights"; the Twilio Verify facade's routes are the paths its section lists under `<base>/twilio/v2`,
# the Authsignal facade's the server routes it names by what they do and the client routes it lists (their CORS
# preflights with them, as for the native client routes).
# Each counts as documented only while the text that names it is there.
TWILIO_VERIFY = (
    'at `<base>/twilio/v2` (twilio-python: `client.verify.base_url = "<base>/twilio"`): '
    "`Services/{ServiceSid}/Verifications`, `…/Verifications/{Sid}`, `…/VerificationCheck`, form-encoded"
)
# The Authsignal facade's: the server routes its section names by what they do, the client routes by path.
AUTHSIGNAL_SERVER = (
    "the server routes the Authsignal SDKs call for SMS (track, actions, users, authenticators, validate, challenge,"
    " verify, claim)"
)
AUTHSIGNAL_CLIENT = "(`/client/user-authenticators/sms`, `/client/challenge/sms`, `/client/verify/sms`) with `Bearer"
# The routes of the SDKs' methods this service does not have (sessions, queries, other factors) answer its errors.
AUTHSIGNAL_ERRORS = 'exactly `Content-Type: application/json`; errors `{"error", "errorCode", "errorDescription"}`'
PROSE_ROUTES = {
    ("GET", "/v1/hosted/challenge"): "`<base>/v1/hosted/challenge#token=<client token>`",
    ("GET", "/v1/hosted/challenge.js"): "the hosted page's static routes are public",
    ("GET", "/v1/hosted/challenge.css"): "the hosted page's static routes are public",
    ("GET", "/v1/hosted/sms-otp.js"): "the hosted page's static routes are public",
    ("OPTIONS", "/v1/client/sms/enroll"): "Client routes answer CORS preflights for the app's `allowedOrigins`",
    ("OPTIONS", "/v1/client/sms/challenge"): "Client routes answer CORS preflights for the app's `allowedOrigins`",
    ("OPTIONS", "/v1/client/sms/verify"): "Client routes answer CORS preflights for the app's `allowedOrigins`",
    ("POST", "/twilio/v2/Services/{ServiceSid}/Verifications"): TWILIO_VERIFY,
    ("GET", "/twilio/v2/Services/{ServiceSid}/Verifications/{Sid}"): TWILIO_VERIFY,
    ("POST", "/twilio/v2/Services/{ServiceSid}/Verifications/{Sid}"): TWILIO_VERIFY,
    ("POST", "/twilio/v2/Services/{ServiceSid}/VerificationCheck"): TWILIO_VERIFY,
    ("POST", "/authsignal/v1/users/{userId}/actions/{action}"): AUTHSIGNAL_SERVER,
    ("GET", "/authsignal/v1/users/{userId}/actions/{action}/{idempotencyKey}"): AUTHSIGNAL_SERVER,
    ("PATCH", "/authsignal/v1/users/{userId}/actions/{action}/{idempotencyKey}"): AUTHSIGNAL_SERVER,
    ("GET", "/authsignal/v1/users/{userId}"): AUTHSIGNAL_SERVER,
    ("PATCH", "/authsignal/v1/users/{userId}"): AUTHSIGNAL_SERVER,
    ("DELETE", "/authsignal/v1/users/{userId}"): AUTHSIGNAL_SERVER,
    ("GET", "/authsignal/v1/users/{userId}/authenticators"): AUTHSIGNAL_SERVER,
    ("POST", "/authsignal/v1/users/{userId}/authenticators"): AUTHSIGNAL_SERVER,
    ("DELETE", "/authsignal/v1/users/{userId}/authenticators/{userAuthenticatorId}"): AUTHSIGNAL_SERVER,
    ("POST", "/authsignal/v1/validate"): AUTHSIGNAL_SERVER,
    ("POST", "/authsignal/v1/challenge"): AUTHSIGNAL_SERVER,
    ("POST", "/authsignal/v1/verify"): AUTHSIGNAL_SERVER,
    ("POST", "/authsignal/v1/claim"): AUTHSIGNAL_SERVER,
    ("POST", "/authsignal/v1/client/user-authenticators/sms"): AUTHSIGNAL_CLIENT,
    ("OPTIONS", "/authsignal/v1/client/user-authenticators/sms"): AUTHSIGNAL_CLIENT,
    ("POST", "/authsignal/v1/client/challenge/sms"): AUTHSIGNAL_CLIENT,
    ("OPTIONS", "/authsignal/v1/client/challenge/sms"): AUTHSIGNAL_CLIENT,
    ("POST", "/authsignal/v1/client/verify/sms"): AUTHSIGNAL_CLIENT,
    ("OPTIONS", "/authsignal/v1/client/verify/sms"): AUTHSIGNAL_CLIENT,
    ("GET", "/authsignal/v1/users"): AUTHSIGNAL_ERRORS,
    ("GET", "/authsignal/v1/users/{userId}/actions"): AUTHSIGNAL_ERRORS,
    ("GET", "/authsignal/v1/challenges"): AUTHSIGNAL_ERRORS,
    ("POST", "/authsignal/v1/sessions"): AUTHSIGNAL_ERRORS,
    ("POST", "/authsignal/v1/sessions/{operation}"): AUTHSIGNAL_ERRORS,
    ("POST", "/authsignal/v1/sessions/user/revoke"): AUTHSIGNAL_ERRORS,
    ("ANY", "/authsignal/v1/client/challenge"): AUTHSIGNAL_ERRORS,
    ("ANY", "/authsignal/v1/client/challenge/{factor}"): AUTHSIGNAL_ERRORS,
    ("ANY", "/authsignal/v1/client/user-authenticators/{factor}"): AUTHSIGNAL_ERRORS,
    ("ANY", "/authsignal/v1/client/user-authenticators/{factor}/{step}"): AUTHSIGNAL_ERRORS,
    ("ANY", "/authsignal/v1/client/user-authenticators/{factor}/{step}/{platform}"): AUTHSIGNAL_ERRORS,
    ("ANY", "/authsignal/v1/client/verify/{factor}"): AUTHSIGNAL_ERRORS,
    ("ANY", "/authsignal/v1/client/verify/{factor}/{step}"): AUTHSIGNAL_ERRORS,
}


def documented(text: str) -> set[tuple[str, str]]:
    """The routes a contract text documents: written as routes, or named by the prose of :data:`PROSE_ROUTES`."""
    flat = " ".join(text.split())
    return documented_routes(text) | {
        route for route, phrase in PROSE_ROUTES.items() if " ".join(phrase.split()) in flat
    }


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


def _relative_to(full: str, suffix: str) -> str:
    """``…/keys/{keyId}`` after ``/v1/admin/apps/{appId}/keys``: the ellipsis is the full path up to the last
    segment the suffix starts with (``/v1/admin/apps/{appId}``), or the whole full path when it has none."""
    segments = full.split("/")
    first = suffix.split("/")[1]
    if first in segments:
        cut = len(segments) - 1 - segments[::-1].index(first)
        return "/".join(segments[:cut]) + suffix
    return full.rstrip("/") + suffix


def documented_routes(text: str) -> set[tuple[str, str]]:
    routes = set()
    last_full: str | None = None  # the last path written out in full
    last: str | None = None  # the last path mentioned, full or relative
    for match in _ROUTE.finditer(text):
        if match["bare"]:
            if last is not None:
                routes.add((match["bare"], last))
            continue
        path = match["path"].rstrip(".,:;")
        if match["relative"]:
            if last_full is None:
                continue  # relative to nothing: not a route this parser can name
            path = _relative_to(last_full, path)
        else:
            last_full = path
        last = path
        for method in re.findall(_METHOD, match["methods"]):
            routes.add((method, path))
    return routes


def test_the_route_parser_reads_the_contracts_forms():
    text = "### POST /v1/challenges — start\n- `GET` and `PUT /v1/admin/fraud/safe-list?appId=` → `200`"
    assert documented_routes(text) == {
        ("POST", "/v1/challenges"),
        ("GET", "/v1/admin/fraud/safe-list"),
        ("PUT", "/v1/admin/fraud/safe-list"),
    }


def test_the_route_parser_reads_the_apps_sections_shorthands():
    # Given the Apps section's forms: a bare method after a path, and paths relative to the last full path
    text = (
        "`GET /v1/admin/apps/{appId}` → the record; `PATCH /v1/admin/apps/{appId}` `{}` → `200`;\n"
        "  `DELETE` → `204`. Keys: `POST /v1/admin/apps/{appId}/keys` `{}` → `201`. `GET …/keys` answers\n"
        "  `{}`. `DELETE …/keys/{keyId}` → `204`."
    )

    # Then each names its route: the bare DELETE the path just before it, the relative ones under .../keys
    assert documented_routes(text) == {
        ("GET", "/v1/admin/apps/{appId}"),
        ("PATCH", "/v1/admin/apps/{appId}"),
        ("DELETE", "/v1/admin/apps/{appId}"),
        ("POST", "/v1/admin/apps/{appId}/keys"),
        ("GET", "/v1/admin/apps/{appId}/keys"),
        ("DELETE", "/v1/admin/apps/{appId}/keys/{keyId}"),
    }


def test_the_route_parser_resolves_shorthands_only_against_a_path_it_has_read():
    # A relative path is cut where its first segment last occurs in the last full path, or else appended to it
    assert documented_routes("`GET /v1/admin/apps/{appId}`; `GET …/keys`") == {
        ("GET", "/v1/admin/apps/{appId}"),
        ("GET", "/v1/admin/apps/{appId}/keys"),
    }
    assert documented_routes("`GET /v1/a/{id}/keys`, `GET .../keys/{keyId}`; `DELETE` → `204`") == {
        ("GET", "/v1/a/{id}/keys"),
        ("GET", "/v1/a/{id}/keys/{keyId}"),
        # a bare method takes the path just mentioned, relative or not
        ("DELETE", "/v1/a/{id}/keys/{keyId}"),
    }
    # The bare form is only a backticked method before an arrow, and neither shorthand means anything before
    # a path was read
    assert documented_routes("`DELETE` → `204`, `GET …/keys`, then `POST /v1/track`; a `GET` takes no body") == {
        ("POST", "/v1/track")
    }


def test_every_template_route_is_in_the_repositorys_api_reference():
    missing = template_routes() - documented(DOCS.read_text(encoding="utf-8"))
    assert not missing, f"routes of template.yaml missing from docs/api.md: {sorted(missing)}"


def test_every_template_route_is_in_the_contract():
    if not CONTRACT.exists():
        pytest.skip("the contract (../shared/api.md) is not beside this checkout")
    missing = template_routes() - documented(CONTRACT.read_text(encoding="utf-8"))
    assert not missing, f"routes of template.yaml missing from the contract: {sorted(missing)}"


def test_prose_names_a_route_only_while_its_text_is_there():
    text = (
        "`<base>/v1/hosted/challenge#token=<client token>`; the hosted page's static\n   routes are public. Client"
        " routes answer CORS preflights\n  for the app's `allowedOrigins`; Twilio Verify v2 "
        + TWILIO_VERIFY
        + "; "
        + AUTHSIGNAL_SERVER
        + " and the client routes "
        + AUTHSIGNAL_CLIENT
        + ", with "
        + AUTHSIGNAL_ERRORS
    )
    assert documented(text) == set(PROSE_ROUTES)
    assert documented("the hosted page") == set()


def test_the_reference_is_the_contracts_version():
    if not CONTRACT.exists():
        pytest.skip("the contract (../shared/api.md) is not beside this checkout")
    version = re.search(r"^# HTTP API contract, (v[0-9.]+)$", CONTRACT.read_text(encoding="utf-8"), re.MULTILINE)
    assert version is not None
    assert f"# HTTP API contract, {version.group(1)}\n" in DOCS.read_text(encoding="utf-8"), (
        "docs/api.md is not the contract's current version: copy ../shared/api.md again"
    )
