"""``python -m local.invoke FUNCTION EVENT.json``: ``sam local invoke -e`` without Docker.

FUNCTION is a logical id (``CreateChallengeFunction``) or a CodeUri folder (``create_challenge``). The
handler runs once, in this process, against freshly provisioned local services; its result is printed as
JSON on stdout, and its logs (and any SMS it sends) go to stderr. The services hold what ``make run``'s do:
the API key, the admin key, and the local SMS provider secret that the sample delivery-status events are
signed against.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from local.gateway import LambdaContext, import_handler, quiet_empty_metrics
from local.iam import IAM, enabled_by_environment, install_iam_hook
from local.outbox import OUTBOX, install_outbox_hook
from local.services import (
    java_missing_warning,
    local_admin_key,
    local_provider_credentials,
    patched_environ,
    provision_stack,
    start_dynamodb_local,
    start_moto_server,
    warn,
)
from local.stack import local_api_key
from local.template import DEFAULT_TEMPLATE, Template
from otp_core import runtime


def invoke(function_name: str, event: dict[str, Any], template_path: Path = DEFAULT_TEMPLATE) -> Any:
    """Provision local services, run one function's handler with ``event`` and return its result."""
    template = Template.load(template_path)
    function = template.find_function(function_name)
    with contextlib.ExitStack() as stack:
        dynamodb = start_dynamodb_local()
        if dynamodb is None:
            warn(java_missing_warning())
        else:
            stack.enter_context(dynamodb)
        moto = stack.enter_context(start_moto_server())
        provisioned = provision_stack(
            template,
            dynamodb_endpoint=dynamodb.endpoint if dynamodb else moto.endpoint,
            aws_endpoint=moto.endpoint,
            api_key=local_api_key(),
            admin_key=local_admin_key(),
            provider_credentials=local_provider_credentials(os.environ),
        )
        stack.enter_context(patched_environ(provisioned.environment))
        runtime.reset()
        stack.enter_context(quiet_empty_metrics())
        OUTBOX.echo = sys.stderr
        install_outbox_hook(OUTBOX)
        enforce = enabled_by_environment()
        if enforce:
            IAM.configure(template, provisioned.resolver)
            stack.callback(IAM.clear)
            install_iam_hook(IAM)
        # Handler logs and metrics print to stdout; keep stdout for the result alone, as sam does.
        with contextlib.redirect_stdout(sys.stderr):
            handler = import_handler(function)
            if enforce:
                handler = IAM.wrap(function.logical_id, handler)
            return handler(event, LambdaContext.for_function(function))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m local.invoke", description=__doc__.split("\n")[0])
    parser.add_argument("function", help="logical id (CreateChallengeFunction) or folder (create_challenge)")
    parser.add_argument("event", type=Path, help="event JSON file, e.g. events/create_challenge.json")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    args = parser.parse_args(argv)
    event = json.loads(args.event.read_text(encoding="utf-8"))
    try:
        result = invoke(args.function, event, args.template)
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
