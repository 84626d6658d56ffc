"""The one logger, metrics and tracer of the service.

Codes, tokens, secrets and full phone numbers never reach any of them: log ``mask_phone`` output only.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

# Powertools reads these variables too; the defaults keep `sam local invoke` and tests working without them.
SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME", "sms-otp")
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "SmsOtp"), service=SERVICE)
# Only what the service calls out through: AWS SDK calls and the vendors' HTTP (urllib3 on http.client).
# Patching everything X-Ray knows would also import libraries the functions never use.
tracer = Tracer(service=SERVICE, patch_modules=("botocore", "httplib"))


REDACTED_AWS_MESSAGE = "(the service's message is withheld: AWS error messages can quote request values)"


def redact_aws_errors(client: Any) -> Any:
    """Withhold the message of every AWS error ``client`` raises; its code (and modeled fields such as
    ``Reason``) stay.

    AWS validation messages quote request values ("Value '+6421...' at 'destinationPhoneNumber' failed to
    satisfy constraint"), and X-Ray's botocore patch records every exception's text on the call's subsegment: a
    phone number would reach a trace. The message is replaced when botocore has parsed the answer, before the
    ``ClientError`` is made from it, so neither the trace, a log line nor an error chain can carry it.
    """
    client.meta.events.register("after-call", _redact_message)
    return client


def _redact_message(parsed: Any = None, **_: Any) -> None:
    error = parsed.get("Error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and "Message" in error:
        error["Message"] = REDACTED_AWS_MESSAGE
    if isinstance(parsed, dict) and isinstance(parsed.get("Message"), str) and "Error" in parsed:
        parsed["Message"] = REDACTED_AWS_MESSAGE


def mask_phone(phone_number: str) -> str:
    """Return the last four digits of a number, the only part that may be logged or returned."""
    return phone_number[-4:]


def count(name: str, country: str | None = None) -> None:
    """One count of ``name`` for the stack (the ``service`` dimension), and again by ``country`` when given.

    Countries are ISO 3166 regions, never numbers. The per-country count is its own EMF document
    (``single_metric``): a dimension added to the shared ``metrics`` object would apply to every metric of the
    invocation.
    """
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if country:
        with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
            metric.add_dimension(name="service", value=SERVICE)
            metric.add_dimension(name="country", value=country)
