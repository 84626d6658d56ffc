"""SMS through Amazon SNS: a direct publish to the phone number, Transactional, with a sender ID when given.

SNS takes its credentials from the function's role, so it needs no section in the provider secret; its boto3
client comes from the composition root.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from otp_core.errors import DeliveryFailedError
from otp_core.observability import tracer
from otp_core.ports import SmsSender
from otp_core.records import OutgoingSms, SentSms
from otp_core.sms.vendor import UNAVAILABLE_DETAIL, bad_number


class SnsSmsSender(SmsSender):
    """Sends with ``sns:Publish`` to a phone number (never a topic).

    Parameters
    ----------
    client:
        A boto3 SNS client.
    """

    name = "sns"

    def __init__(self, client: Any) -> None:
        self._client = client

    @tracer.capture_method(capture_response=False)
    def send(self, sms: OutgoingSms) -> SentSms:
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        if sms.sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": sms.sender_id}
        try:
            response = self._client.publish(PhoneNumber=sms.to, Message=sms.body, MessageAttributes=attributes)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "InvalidParameter":
                # SNS rejects numbers it cannot deliver to this way; that is the caller's input, not an outage.
                raise bad_number() from exc
            raise DeliveryFailedError(UNAVAILABLE_DETAIL) from exc
        except BotoCoreError as exc:
            raise DeliveryFailedError(UNAVAILABLE_DETAIL) from exc
        return SentSms(provider=self.name, message_id=response.get("MessageId"))
