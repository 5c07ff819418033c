"""CPU per message of `add(infer=False)` in a conversation, with working memory reading each message whole
against reading its opening (``working.tracker.FOCUS_CHARS``): long assistant replies made the spaCy parse of
the working-state fold most of an add's cost.

    python bench/working_parse.py /path/to/longmemeval_s_dev100.jsonl [instance] [sessions]

The test embedder stands in for MiniLM, so the figures are the add's own work without embedding.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

from memstrata import Memory
from memstrata.ingest.nlp import get_nlp
from memstrata.providers.embedders import HashEmbedder
from memstrata.working import tracker


def main() -> None:
    path = sys.argv[1]
    index = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 12
    with open(path, encoding="utf-8") as f:
        instance = json.loads(f.readlines()[index])
    sessions = instance["haystack_sessions"][:count]
    get_nlp()
    opening = tracker.FOCUS_CHARS
    for label, cap in (("whole message", 10**9), (f"opening ({opening} chars)", opening)) * 2:
        tracker.FOCUS_CHARS = cap
        with tempfile.TemporaryDirectory() as d, Memory(f"sqlite:///{d}/x.db", embedder=HashEmbedder()) as m:
            n, start = 0, time.process_time()
            for i, session in enumerate(sessions):
                for turn in session:
                    m.add([{"role": turn["role"], "content": turn["content"]}], user_id="u",
                          conversation_id=f"s{i}", infer=False)
                    n += 1
            print(f"{label}: {(time.process_time() - start) / n * 1000:.1f} ms CPU per message over {n} messages")


if __name__ == "__main__":
    main()
