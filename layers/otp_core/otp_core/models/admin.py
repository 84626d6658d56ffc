"""Operator routes (``/v1/admin/...``): the fraud guard's blocks and safe lists, apps and their API keys."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from otp_core.models.base import RequestModel, ResponseModel

AppId = Annotated[str, StringConstraints(strict=True, max_length=64)]
BucketName = Annotated[str, StringConstraints(strict=True, max_length=32)]
Time = Annotated[str, StringConstraints(strict=True, max_length=40)]
SafeEntry = Annotated[str, StringConstraints(strict=True, max_length=32)]


def _one_line(value: str) -> str:
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise ValueError("must be one line without control characters")
    return value


# The use case checks an app's name and settings (otp_core.app_admin) and names the field that fails; a key's
# description is only stored and listed, so its rules are here: one line of at most 200 characters.
KeyDescription = Annotated[str, StringConstraints(strict=True, max_length=200), AfterValidator(_one_line)]


class BlockRequest(RequestModel):
    app_id: AppId | None = None
    bucket: BucketName
    until: Time | None = None


class SafeListRequest(RequestModel):
    app_id: AppId | None = None
    entries: Annotated[list[SafeEntry], Field(max_length=1000)]


class BlockView(ResponseModel):
    app_id: str
    bucket: str
    reason: str
    since: str
    until: str | None
    sends: int
    verified: int

    def to_json(self) -> dict[str, Any]:
        # ``until`` is null for a manual block without an end: kept, not dropped.
        return self.model_dump(by_alias=True, mode="json")


class BlockList(ResponseModel):
    blocks: list[BlockView]

    def to_json(self) -> dict[str, Any]:
        return {"blocks": [block.to_json() for block in self.blocks]}


class SafeList(ResponseModel):
    entries: list[str]


class AppCreateRequest(RequestModel):
    app_id: AppId | None = None
    name: Annotated[str, StringConstraints(strict=True)]
    settings: dict[str, Any] | None = None


class AppPatchRequest(RequestModel):
    name: Annotated[str, StringConstraints(strict=True)] | None = None
    # A null value removes that override (the app gets the stack's value back).
    settings: dict[str, Any] | None = None


class KeyCreateRequest(RequestModel):
    description: KeyDescription | None = None


class AppView(ResponseModel):
    app_id: str
    name: str
    settings: dict[str, Any]
    created_at: str
    twilio_service_sid: str
    twilio_account_sid: str

    def to_json(self) -> dict[str, Any]:
        # Every field is always there; the settings are the app's overrides exactly as stored.
        return self.model_dump(by_alias=True, mode="json")


class AppList(ResponseModel):
    apps: list[AppView]

    def to_json(self) -> dict[str, Any]:
        return {"apps": [app.to_json() for app in self.apps]}


class KeyCreated(ResponseModel):
    """The one answer that holds a key's secret: handlers never log it."""

    key_id: str
    api_key: str
    created_at: str


class KeyView(ResponseModel):
    key_id: str
    description: str | None
    created_at: str
    last_used_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        # ``description`` is null for a key created without one; ``lastUsedAt`` is absent until its first use.
        found = self.model_dump(by_alias=True, mode="json")
        if found["lastUsedAt"] is None:
            del found["lastUsedAt"]
        return found


class KeyList(ResponseModel):
    keys: list[KeyView]

    def to_json(self) -> dict[str, Any]:
        return {"keys": [key.to_json() for key in self.keys]}
