"""``python -m tests.local`` (``make run``): the local stack on http://127.0.0.1:$PORT until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from tests.local.stack import LocalStack, add_import_roots, run_local_stack


def _banner(stack: LocalStack) -> str:
    routes = sorted(stack.template.routes, key=lambda route: (route.path, route.method))
    lines = [
        f"API key:        {stack.api_key}   (Authorization: Bearer {stack.api_key})",
        f"Table:          {stack.table_name} on "
        + ("DynamoDB Local" if stack.uses_dynamodb_local else "moto")
        + f" at {stack.dynamodb_endpoint}",
        f"KMS, Secrets Manager, SNS: moto at {stack.aws_endpoint}",
        "Routes:",
        *(
            f"  {route.method:<7}{route.path:<42}{route.function_id}{'' if route.authorizer else '  (public)'}"
            for route in routes
        ),
        f"  {'GET':<7}{'/_local/outbox':<42}SMS sent so far (DELETE empties it)",
        "Try:",
        f"  curl -s -X POST {stack.url}/v1/challenges -H 'Authorization: Bearer {stack.api_key}' \\",
        '       -H \'Content-Type: application/json\' -d \'{"phoneNumber": "+14155552671", "action": "signIn"}\'',
        f"  curl -s {stack.url}/_local/outbox",
        "Ctrl-C stops it.",
        f"Local stack ready: {stack.url}",
    ]
    return "\n".join(lines)


def main() -> int:
    """Run the local stack until SIGINT or SIGTERM."""
    add_import_roots()
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with run_local_stack() as stack:
        print(_banner(stack), flush=True)
        while not stop.wait(0.5):
            pass
        print("stopping the local stack", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
