"""Run every vendor fake on 127.0.0.1 and print the settings that point the adapters at them.

    python -m tests.vendors

Then start the local stack with SMS_PROVIDERS (e.g. ``twilio,vonage``) and the printed SMS_PROVIDER_ENDPOINTS,
plus a provider secret (any values) under SMS_PROVIDER_SECRET_ID. Requests are printed as they arrive, with
bodies left out because they hold codes.
"""

from __future__ import annotations

import time

from tests.vendors.servers import endpoints, running


def main() -> None:
    with running() as fakes:
        print(f"SMS_PROVIDER_ENDPOINTS={endpoints(fakes)}", flush=True)
        seen = dict.fromkeys(fakes, 0)
        try:
            while True:
                time.sleep(0.5)
                for name, fake in fakes.items():
                    for request in fake.requests[seen[name] :]:
                        print(f"{name}: {request.method} {request.route}", flush=True)
                    seen[name] = len(fake.requests)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
