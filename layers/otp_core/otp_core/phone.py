"""Phone number policy: E.164 only, region allow and block lists, SMS-capable number types.

Imported only by the functions that accept numbers, so the others never load libphonenumber's metadata.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType

from otp_core.errors import InvalidPhoneNumberError, UnsupportedCountryError, UnsupportedNumberTypeError
from otp_core.settings import Settings

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_TYPE_NAMES = {
    value: name for name, value in vars(PhoneNumberType).items() if name.isupper() and isinstance(value, int)
}


def check_phone_number(phone_number: str, settings: Settings) -> str:
    """Validate a number against the policy and return its ISO 3166 region code.

    Raises
    ------
    InvalidPhoneNumberError
        Not E.164, or not a valid number for its region.
    UnsupportedCountryError
        The region is not allowed, or is blocked.
    UnsupportedNumberTypeError
        The number type cannot receive SMS under the policy.
    """
    if not _E164.fullmatch(phone_number):
        raise InvalidPhoneNumberError("phoneNumber must be in E.164 format, like +14155552671")
    try:
        parsed = phonenumbers.parse(phone_number, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumberError("phoneNumber is not a valid phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumberError("phoneNumber is not a valid phone number")
    region = phonenumbers.region_code_for_number(parsed) or "ZZ"
    allowed = settings.allowed_countries
    if region in settings.blocked_countries or ("*" not in allowed and region not in allowed):
        raise UnsupportedCountryError(f"numbers from {region} are not supported")
    number_type = _TYPE_NAMES.get(phonenumbers.number_type(parsed), "UNKNOWN")
    if number_type not in settings.allowed_number_types:
        raise UnsupportedNumberTypeError(f"{number_type} numbers cannot receive codes")
    return region
