"""What every wire model shares: the strict request and response bases and the field types."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

Action = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
UserId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
PhoneNumber = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=32)]


def _has_letter(value: str) -> str:
    if not any(char.isalpha() for char in value):
        raise ValueError("senderId must contain at least one letter")
    return value


SenderId = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9 ]{1,11}$"), AfterValidator(_has_letter)]
Locale = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{1,8}){0,4}$")]
Message = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=640)]
Code = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{4,10}$")]
Scope = Literal["add:authenticators", "update:authenticators"]


_NOT_AN_ADDRESS = "must be an IPv4 or IPv6 address (no zone ID, no prefix length)"


def _ip(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(_NOT_AN_ADDRESS) from None  # ipaddress's own message repeats the input
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise ValueError(_NOT_AN_ADDRESS)
    return str(address)


IpAddress = Annotated[str, StringConstraints(strict=True, max_length=64), AfterValidator(_ip)]


class RequestModel(BaseModel):
    """Strict request body: camelCase names, no unknown fields, no type coercion."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True, frozen=True, defer_build=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, defer_build=True)

    def to_json(self) -> dict[str, object]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
