"""Compatibility facades: Authsignal's and Twilio Verify's APIs over this service's own use cases.

A facade translates a vendor's request into calls of the core (otp_core.service, otp_core.mfa and the rest) and
the core's answers and errors into the vendor's shapes; it has no rule of its own, so every rule of the native
API (attempts, expiry, single use, caps, lockout, fraud guard, budgets, apps, test numbers) holds behind it.
"""
