"""What the archive tests share: the months their episodes are dated in and how they fill a scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from memstrata import Memory

JAN = datetime(2024, 1, 10, 12, tzinfo=UTC).timestamp()
FEB = datetime(2024, 2, 10, 12, tzinfo=UTC).timestamp()
MAR_START = datetime(2024, 3, 1, tzinfo=UTC).timestamp()


def at(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def fill(m: Memory, user: str, words: str, org: str | None = None, when: tuple[float, ...] = (JAN, FEB)) -> None:
    """Two old episodes (January and February 2024) and a recent one, stored as said."""
    for i, ts in enumerate(when):
        m.add([{"role": "user", "content": f"{words} number {i}"}], user_id=user, org_id=org,
              conversation_id="c1", timestamp=at(ts), infer=False)
    m.add([{"role": "user", "content": f"{words} recent"}], user_id=user, org_id=org, conversation_id="c1",
          infer=False)


def contents(page: dict[str, Any]) -> list[str]:
    return [e["content"] for e in page["results"]]
