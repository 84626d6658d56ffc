"""The local stack: the Lambda handlers in-process behind a small API Gateway, on DynamoDB Local and moto.

``python -m tests.local`` serves it (``make run``); ``python -m tests.local.invoke`` runs one handler with
an event file (``make invoke``); tests use ``run_local_stack`` or ``spawn_local_stack``. Every handler runs
under its function's IAM policy from template.yaml (``tests.local.iam``), which the local services do not check.
"""
