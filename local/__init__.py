"""The local stack: the Lambda handlers in-process behind a small API Gateway, on DynamoDB Local and moto.

``python -m local`` serves it (``make run``); ``python -m local.invoke`` runs one handler with an event file
(``make invoke``); ``python -m local.idp`` mints a user access token of its identity provider (``make token``);
``python -m local.bench`` measures the built functions (``make bench``). Tests use ``local.stack``'s
``run_local_stack`` or ``spawn_local_stack``. Every handler runs under its function's IAM policy from
template.yaml (``local.iam``), which the local services do not check.

The import roots are those of Lambda and the tests: the repository root (``functions``, ``local``) and
``layers/otp_core`` (``otp_core``); the Makefile and pyproject's pytest ``pythonpath`` set them.
"""

from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
"""The repository root: template.yaml, events/, node_modules/ and .local/ are found from here."""
