"""A small LoCoMo file for harness tests: one conversation of one session between Ann and Bob."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_locomo(path: Path, turns: list[tuple[str, str]], qa: list[dict[str, Any]]) -> Path:
    """``turns`` as (speaker, text), given dia ids D1:1, D1:2, …; ``qa`` as LoCoMo writes its questions."""
    sample = {
        "sample_id": "conv-1",
        "conversation": {
            "speaker_a": "Ann", "speaker_b": "Bob", "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [{"speaker": s, "dia_id": f"D1:{i + 1}", "text": t} for i, (s, t) in enumerate(turns)],
        },
        "qa": qa,
    }
    path.write_text(json.dumps([sample]))
    return path
