"""Local fakes of the SMS vendors' HTTP APIs, for tests and the offline local stack."""
