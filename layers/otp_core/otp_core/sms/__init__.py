"""The SMS subsystem: vendors, routing with failover, the circuit breaker, delivery records and callbacks.

Modules, from the use cases' side down:

- :mod:`~otp_core.sms.factory`: ``build_sender``, the stack's :class:`~otp_core.ports.SmsSender` from its
  settings (the composition root calls it);
- :mod:`~otp_core.sms.routing`: ``FailoverSender``, per-country routes, the send budget, the metrics;
- :mod:`~otp_core.sms.breaker`: the circuit breaker's pure rules, its store port and the breaker itself;
  :mod:`~otp_core.sms.circuit_store`: that state in DynamoDB;
- :mod:`~otp_core.sms.vendor`: what every HTTP vendor adapter shares (``ProviderError`` and its reasons, the
  sender-ID rule); :mod:`~otp_core.sms.http`: their pooled urllib3 POST;
- :mod:`~otp_core.sms.vendors`: one module per vendor (SNS included); the package's module names are the registry;
- :mod:`~otp_core.sms.secret`: the provider secret, read and parsed in one place;
- :mod:`~otp_core.sms.delivery`: each challenge's delivery record in DynamoDB (the
  :class:`~otp_core.ports.DeliveryLog`);
- :mod:`~otp_core.sms.callbacks`: a delivery-status callback as received, and the reader each provider with
  callbacks implements; :mod:`~otp_core.sms.reports`: ``DeliveryReports``, the use case that verifies one and
  records its outcome.

Nothing is imported here: a function loads only the modules its use case needs, and vendor modules load only
when a stack routes to them.
"""
