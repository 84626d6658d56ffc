"""The one logger, metrics and tracer of the service.

Codes, tokens, secrets and full phone numbers never reach any of them: log ``mask_phone`` output only.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

# Powertools reads these variables too; the defaults keep `sam local invoke` and tests working without them.
SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME", "sms-otp")
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "SmsOtp"), service=SERVICE)
# Only what the service calls out through: AWS SDK calls and the vendors' HTTP (urllib3 on http.client).
# Patching everything X-Ray knows would also import libraries the functions never use.
tracer = Tracer(service=SERVICE, patch_modules=("botocore", "httplib"))


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
