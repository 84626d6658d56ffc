"""``python -m local`` (``make run``): the local stack on http://127.0.0.1:$PORT until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from local.gateway import COUNTERS_PATH, OUTBOX_PATH
from local.idp import JWKS_PATH, TOKEN_PATH
from local.stack import LocalStack, run_local_stack
from local.template import Route

_LONGEST_LOCAL_ROUTE = Route("GET", JWKS_PATH, "", None)


def _banner(stack: LocalStack) -> str:
    routes = sorted(stack.gateway.routes, key=lambda route: (route.path, route.method))
    width = max(len(route.path) for route in [*routes, _LONGEST_LOCAL_ROUTE]) + 2
    lines = [
        f"API key:        {stack.api_key}   (Authorization: Bearer {stack.api_key})",
        _admin_line(stack),
        f"Table:          {stack.table_name} on "
        + ("DynamoDB Local" if stack.uses_dynamodb_local else "moto")
        + f" at {stack.dynamodb_endpoint}",
        f"KMS, Secrets Manager, SNS: moto at {stack.aws_endpoint}",
        _tokens_line(stack),
        _idp_line(stack),
        _iam_line(stack),
        "Routes:",
        *(
            f"  {route.method:<7}{route.path:<{width}}{route.function_id}{'' if route.authorizer else '  (public)'}"
            for route in routes
        ),
        f"  {'GET':<7}{OUTBOX_PATH:<{width}}SMS sent through SNS so far (DELETE empties it)",
        f"  {'DELETE':<7}{COUNTERS_PATH:<{width}}forget every send cap, failure count and lock",
        f"  {'GET':<7}{JWKS_PATH:<{width}}the local IdP's JWKS",
        f"  {'POST':<7}{TOKEN_PATH:<{width}}the local IdP mints a user access token",
        "Try:",
        f"  curl -s -X POST {stack.url}/v1/challenges -H 'Authorization: Bearer {stack.api_key}' \\",
        '       -H \'Content-Type: application/json\' -d \'{"phoneNumber": "+14155552671", "action": "signIn"}\'',
        f"  curl -s {stack.url}{OUTBOX_PATH}",
        *_idp_try_lines(stack),
        "Ctrl-C stops it.",
        f"Local stack ready: {stack.url}",
    ]
    return "\n".join(lines)


def _admin_line(stack: LocalStack) -> str:
    if not stack.serves_admin:
        return "Admin key:      not used (AdminApi=disabled): /v1/admin/* is left out"
    return f"Admin key:      {stack.admin_key}   (Authorization: Bearer {stack.admin_key}, /v1/admin/* only)"


def _tokens_line(stack: LocalStack) -> str:
    issuer, audience = stack.environment.get("TOKEN_ISSUER", ""), stack.environment.get("TOKEN_AUDIENCE", "")
    return f"Tokens:         iss {issuer}, aud {audience}, ES256 keys at {stack.url}/.well-known/jwks.json"


def _idp_line(stack: LocalStack) -> str:
    if not stack.serves_verification:
        return "Local IdP:      not used (IDP_ISSUER is empty): /v1/verification/sms/* is left out"
    return f"Local IdP:      iss {stack.idp.issuer}, aud {stack.idp.audience}, RS256 key in .local/idp-key.pem"


def _iam_line(stack: LocalStack) -> str:
    if stack.iam is None:
        return "IAM:            not enforced (OTP_LOCAL_IAM=off): calls a function's policy lacks go through"
    return "IAM:            each function's template.yaml Policies are enforced (OTP_LOCAL_IAM=off to stop)"


def _idp_try_lines(stack: LocalStack) -> list[str]:
    if not stack.serves_verification:
        return []
    return [
        "  TOKEN=$(make -s token SUB=user-123)   # a user access token of this stack's IdP, or:",
        f'  TOKEN=$(curl -s -X POST {stack.url}{TOKEN_PATH} -d \'{{"sub": "user-123"}}\' | jq -r .accessToken)',
        f'  curl -s -X POST {stack.url}/v1/verification/sms/send -H "Authorization: Bearer $TOKEN" \\',
        "       -H 'Content-Type: application/json' -d '{\"phoneNumber\": \"+14155552671\"}'",
    ]


def main() -> int:
    """Run the local stack until SIGINT or SIGTERM."""
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with run_local_stack(publish=True) as stack:
        print(_banner(stack), flush=True)
        while not stop.wait(0.5):
            pass
        print("stopping the local stack", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
