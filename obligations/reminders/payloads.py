"""What a team channel is sent for one reminder: Slack's blocks, a Teams Adaptive Card, or the
signed webhook's JSON (README, "Webhooks"). Words only, from one organisation's row: the
reminder's own sentence, its dates as "17 Mar 2025", a link to the site."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from obligations.dates import display
from obligations.reminders.models import ReminderKind, WebhookKind

HEADINGS: dict[str, str] = {
    ReminderKind.OVERDUE: "Overdue: escalation",
    ReminderKind.DUE_SOON: "Due soon",
    ReminderKind.EVIDENCE_EXPIRING: "Evidence expiring",
}
NOTICE_HEADING = "Ofcom notice deadline"
TEST_HEADING = "Test message"


class Message(NamedTuple):
    id: int
    event: str  # digests, escalations, notice_deadlines, or test
    kind: str
    heading: str
    text: str
    deadline: dt.date
    organisation: str
    link: str


def heading(kind: str, event: str) -> str:
    if event == "notice_deadlines":
        return NOTICE_HEADING
    return HEADINGS.get(kind, TEST_HEADING)


def payload(kind: str, message: Message) -> dict[str, Any]:
    if kind == WebhookKind.SLACK:
        return slack(message)
    if kind == WebhookKind.TEAMS:
        return teams(message)
    return signed(message)


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn reads these three as markup; everything else is shown as written.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(message: Message) -> dict[str, Any]:
    title = _slack_escape(f"{message.heading} ({message.organisation})")
    body = _slack_escape(message.text)
    return {
        "text": _slack_escape(f"{message.heading}: {message.text}"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{body}"}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"<{message.link}|Open in the OSA tracker> · about "
                        f"{display(message.deadline)}",
                    }
                ],
            },
        ],
    }


def teams(message: Message) -> dict[str, Any]:
    """An Adaptive Card in a message: what Teams' incoming webhooks and its Workflows'
    "when a webhook request is received" both accept."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": f"{message.heading} ({message.organisation})",
                "weight": "Bolder",
                "wrap": True,
            },
            {"type": "TextBlock", "text": message.text, "wrap": True},
            {
                "type": "TextBlock",
                "text": f"About {display(message.deadline)}",
                "isSubtle": True,
                "wrap": True,
            },
        ],
        "actions": [
            {"type": "Action.OpenUrl", "title": "Open in the OSA tracker", "url": message.link}
        ],
    }
    return {
        "type": "message",
        "summary": message.heading,
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def signed(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "event": message.event,
        "kind": message.kind,
        "heading": message.heading,
        "text": message.text,
        "deadline": message.deadline.isoformat(),
        "deadline_display": display(message.deadline),
        "organisation": message.organisation,
        "url": message.link,
    }
