"""Operator routes of the fraud guard (``/v1/admin/fraud/...``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from otp_core.models.base import RequestModel, ResponseModel

AppId = Annotated[str, StringConstraints(strict=True, max_length=64)]
BucketName = Annotated[str, StringConstraints(strict=True, max_length=32)]
Time = Annotated[str, StringConstraints(strict=True, max_length=40)]
SafeEntry = Annotated[str, StringConstraints(strict=True, max_length=32)]


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
