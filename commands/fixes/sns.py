"""Alarm topic fixes: publish a test notification."""

from __future__ import annotations

from ..models import Risk
from ._registry import Call, FixContext, FixResult, Params, fix


class TestNotification(Params):
    TopicArn: str
    Subject: str = "Test Alarm"
    Message: str = "Test alarm notification"


@fix(
    "sns.send_test_notification",
    title="Publish a test notification",
    risk=Risk.LOW,
    calls=[Call("sns:Publish", ("arn:aws:sns:*:*:{project}-*",))],
    target="TopicArn",
    terraform="Nothing to change.",
)
def send_test_notification(ctx: FixContext, p: TestNotification) -> FixResult:
    sent = ctx.call("sns", "publish", TopicArn=p.TopicArn, Subject=p.Subject, Message=p.Message)
    return FixResult("Test notification published", {}, {"MessageId": sent["MessageId"]})
