"""Run every vendor fake on 127.0.0.1, print the settings that point the adapters at them, then each SMS.

    make vendors            (or: .venv/bin/python -m local.vendors)

Then start the local stack with the printed SMS_PROVIDER_ENDPOINTS and SMS_PROVIDERS (e.g. ``twilio,vonage``):
its SMS provider secret already holds credentials the fakes accept. Each SMS a fake receives is printed as
``[twilio] SMS to +14155552675: 123456 is your ...``, codes included, like the local stack's outbox: these
are fakes on a developer's machine, and the code is what a walk-through needs next.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from local.services import LOCAL_CREDENTIALS
from local.vendors.eum import running_eum
from local.vendors.servers import RecordedRequest, endpoints, running


def _form(request: RecordedRequest) -> dict[str, str]:
    return {name: values[-1] for name, values in urllib.parse.parse_qs(request.body.decode("utf-8")).items()}


def _path(document: Any, *keys: str | int) -> str:
    for key in keys:
        document = document[key]
    return str(document)


# Where each vendor's request carries the recipient and the text (the request each adapter documents).
_SMS: Mapping[str, Callable[[RecordedRequest], tuple[str, str]]] = {
    "twilio": lambda request: (_form(request)["To"], _form(request)["Body"]),
    "vonage": lambda request: ("+" + _form(request)["to"], _form(request)["text"]),
    "bird": lambda request: (
        _path(request.json(), "receiver", "contacts", 0, "identifierValue"),
        _path(request.json(), "body", "text", "text"),
    ),
    "messagemedia": lambda request: (
        _path(request.json(), "messages", 0, "destination_number"),
        _path(request.json(), "messages", 0, "content"),
    ),
    "tnz": lambda request: (
        _path(request.json(), "Destinations", 0, "Recipient"),
        _path(request.json(), "Message"),
    ),
    "modica": lambda request: (_path(request.json(), "destination"), _path(request.json(), "content")),
    "webhook": lambda request: (_path(request.json(), "to"), _path(request.json(), "body")),
}


def describe(name: str, request: RecordedRequest) -> str:
    """One console line for a request a fake received: the SMS it carries, else its method and path."""
    try:
        to, text = _SMS[name](request)
    except (KeyError, IndexError, TypeError, ValueError, json.JSONDecodeError):
        return f"[{name}] {request.method} {request.route} (no SMS in it)"
    return f"[{name}] SMS to {to}: {text}"


def describe_eum(params: Mapping[str, Any]) -> str:
    """One console line for a message End User Messaging's fake accepted (``DryRun`` ones are said so)."""
    dry = " (dry run: validated, not sent)" if params.get("DryRun") else ""
    return f"[eum] SMS to {params.get('DestinationPhoneNumber')}: {params.get('MessageBody')}{dry}"


def main() -> None:
    # End User Messaging's fake checks each request's signature under the local stack's AWS credentials.
    credentials = {LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]: LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    with running() as fakes, running_eum(credentials=credentials) as eum:
        print(f"SMS_PROVIDER_ENDPOINTS={endpoints(fakes)},eum={eum.url}", flush=True)
        seen, eum_seen = dict.fromkeys(fakes, 0), 0
        try:
            while True:
                time.sleep(0.2)
                for name, fake in fakes.items():
                    for request in fake.requests[seen[name] :]:
                        print(describe(name, request), flush=True)
                    seen[name] = len(fake.requests)
                sends = eum.sends
                for params in sends[eum_seen:]:
                    print(describe_eum(params), flush=True)
                eum_seen = len(sends)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
