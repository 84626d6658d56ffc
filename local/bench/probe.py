"""Runs inside the measured interpreter; standard library only.

``python3.13 -I -S probe.py MODE OUT PATH [CONFIG]``: MODE is ``import``, ``baseline`` or ``invoke``; OUT is
where the JSON result goes (stdout belongs to the handler's logs); PATH holds the directories put in front
of ``sys.path``, joined by ``:``; CONFIG (``invoke`` only) is a JSON file with the two ``events``
(warm-up, then measured), ``function_name`` and ``memory_size``.

Only ``sys`` and ``time`` are imported before the timed import (``__future__`` and the rest of the module
cost nothing the handler would not pay), so the handler pays for everything it needs, as in Lambda's init.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing here would spare the handler its cost
if TYPE_CHECKING:
    from typing import Any


def main(mode: str, out: str, path: str, config_path: str | None = None) -> None:
    # The measured interpreter runs with -I (no PYTHONPATH, no site): its import path is Lambda's, given here.
    sys.path[:0] = path.split(":")
    result: dict[str, Any]
    if mode == "import":
        result = {"ms": _timed_import()}
    elif mode == "baseline":
        result = {"ms": _timed_baseline()}
    elif mode == "invoke" and config_path:
        result = _invoke_twice(_load(config_path))
    else:
        raise SystemExit(f"usage: probe.py import|baseline|invoke OUT PATH [CONFIG], not {sys.argv[1:]}")
    import json
    import os

    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    if mode != "invoke":
        # Tearing down hundreds of modules is not part of a cold start; skip it to keep the benchmark short.
        sys.stdout.flush()
        os._exit(0)


def _load(config_path: str) -> dict[str, Any]:
    import json

    with open(config_path, encoding="utf-8") as handle:
        config: dict[str, Any] = json.load(handle)
    return config


def _timed_import() -> float:
    start = time.perf_counter()
    import app  # type: ignore[import-not-found]  # noqa: F401 - the function directory's handler module

    return (time.perf_counter() - start) * 1000


def _timed_baseline() -> float:
    start = time.perf_counter()
    import boto3

    boto3.client("dynamodb", region_name="us-east-1")
    return (time.perf_counter() - start) * 1000


class _Context:
    """The Lambda context attributes the handlers and Powertools read."""

    def __init__(self, function_name: str, memory_size: int, request_id: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_size
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "bench"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + 10

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _invoke_twice(config: dict[str, Any]) -> dict[str, Any]:
    import os
    import uuid

    import app

    rss_after_import = _peak_rss_kb()
    statuses: list[str] = []
    rss: list[int] = []
    for event in config["events"]:
        # Lambda sets the trace header per invocation; the X-Ray SDK's Lambda recorder reads it.
        trace = f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=1"
        os.environ["_X_AMZN_TRACE_ID"] = trace
        context = _Context(config["function_name"], config["memory_size"], str(uuid.uuid4()))
        try:
            reply = app.lambda_handler(event, context)
        except Exception as exc:
            statuses.append(f"raised {type(exc).__name__}")
        else:
            statuses.append(_status(reply))
        rss.append(_peak_rss_kb())
    return {"rss_after_import_kb": rss_after_import, "rss_after_kb": rss, "statuses": statuses}


def _peak_rss_kb() -> int:
    """The process's peak resident memory in KB: ``VmHWM``, else ``ru_maxrss``.

    On Linux ``ru_maxrss`` survives ``fork`` and ``exec``: a child of a large parent reports the parent's
    peak until it grows past it. ``VmHWM`` belongs to the address space that ``exec`` created, so it is the
    child's own. ``ru_maxrss`` (KB on Linux) remains for systems without ``/proc``.
    """
    import resource

    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _status(reply: Any) -> str:
    if isinstance(reply, dict) and "statusCode" in reply:
        return str(reply["statusCode"])
    if isinstance(reply, dict) and "policyDocument" in reply:
        return str(reply["policyDocument"]["Statement"][0]["Effect"])
    return type(reply).__name__


if __name__ == "__main__":
    main(*sys.argv[1:5])
