"""Phone number policy: E.164 only, region allow and block lists, SMS-capable number types.

Imported only by the functions that accept numbers, so the others never load libphonenumber's metadata.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType

from otp_core.errors import InvalidPhoneNumberError, UnsupportedCountryError, UnsupportedNumberTypeError
from otp_core.settings import Policy

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_TYPE_NAMES = {
    value: name for name, value in vars(PhoneNumberType).items() if name.isupper() and isinstance(value, int)
}


def _canonical(phone_number: str) -> phonenumbers.PhoneNumber:
    if not _E164.fullmatch(phone_number):
        raise InvalidPhoneNumberError("phoneNumber must be in E.164 format, like +14155552671")
    try:
        parsed = phonenumbers.parse(phone_number, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumberError("phoneNumber is not a valid phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumberError("phoneNumber is not a valid phone number")
    # One subscriber, one spelling: "+114155552671" or "+4407911123456" would otherwise get caps of their own.
    if phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != phone_number:
        raise InvalidPhoneNumberError("phoneNumber must be in canonical E.164 form, without a trunk prefix")
    return parsed


def require_canonical(phone_number: str) -> None:
    """Accept only a valid number in its one canonical E.164 spelling (no policy check).

    Raises
    ------
    InvalidPhoneNumberError
        Not E.164, not valid, or not the canonical spelling.
    """
    _canonical(phone_number)


def canonical_form(phone_number: str) -> str:
    """The canonical E.164 spelling of a stored number (numbers stored under v1 may carry a trunk prefix)."""
    try:
        parsed = phonenumbers.parse(phone_number, None)
    except phonenumbers.NumberParseException:
        return phone_number
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def check_phone_number(phone_number: str, policy: Policy) -> str:
    """Validate a number against the policy and return its ISO 3166 region code.

    Raises
    ------
    InvalidPhoneNumberError
        Not E.164, not a valid number for its region, or not its canonical spelling.
    UnsupportedCountryError
        The region is not allowed, or is blocked.
    UnsupportedNumberTypeError
        The number type cannot receive SMS under the policy.
    """
    parsed = _canonical(phone_number)
    region = phonenumbers.region_code_for_number(parsed) or "ZZ"
    allowed = policy.allowed_countries
    if region in policy.blocked_countries or ("*" not in allowed and region not in allowed):
        raise UnsupportedCountryError(f"numbers from {region} are not supported")
    number_type = _TYPE_NAMES.get(phonenumbers.number_type(parsed), "UNKNOWN")
    if number_type not in policy.allowed_number_types:
        raise UnsupportedNumberTypeError(f"{number_type} numbers cannot receive codes")
    return region
