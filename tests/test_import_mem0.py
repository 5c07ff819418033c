"""Moving from Mem0: its get_all export, and its open-source store (Qdrant or Chroma folder plus the SQLite
history database), written here in Mem0's own formats with the real qdrant-client, chromadb and sqlite3."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from memstrata import InvalidInputError, Memory
from memstrata.cli import main
from memstrata.importers.mem0 import import_mem0, read_mem0

# Mem0's history table, as mem0/memory/storage.py creates it.
HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS history (
    id           TEXT PRIMARY KEY,
    memory_id    TEXT,
    old_memory   TEXT,
    new_memory   TEXT,
    event        TEXT,
    created_at   DATETIME,
    updated_at   DATETIME,
    is_deleted   INTEGER,
    actor_id     TEXT,
    role         TEXT
)"""
DIM = 8
IDS = {k: str(uuid.uuid4()) for k in ("lisbon", "tea", "planner", "deleted")}


def _payload(text: str, created: str, updated: str | None = None, **extra: Any) -> dict[str, Any]:
    """A point payload as Mem0's Memory._create_memory writes it."""
    return {"data": text, "text_lemmatized": text.lower(), "hash": hashlib.md5(text.encode()).hexdigest(),
            "created_at": created, "updated_at": updated or created, **extra}


PAYLOADS = {
    # an older Mem0 wrote US/Pacific times, a newer one UTC: both must keep their instant
    IDS["lisbon"]: _payload("Lives in Lisbon", "2024-07-20T10:00:00.123456-07:00", "2024-09-01T08:30:00-07:00",
                            user_id="alice", actor_id="alice", role="user", category="home"),
    IDS["tea"]: _payload("Likes green tea", "2025-01-05T12:00:00+00:00", user_id="alice", run_id="trip-1"),
    IDS["planner"]: _payload("Books aisle seats for the user", "2025-02-01T09:00:00+00:00", agent_id="planner"),
}


def _vec(seed: int) -> list[float]:
    return [float((seed * 7 + i) % 5) + 0.5 for i in range(DIM)]


def _history_db(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute(HISTORY_DDL)
    rows = [
        (IDS["lisbon"], None, "Lives in Berlin", "ADD", "2024-07-20T10:00:00.123456-07:00", None, 0, "alice", "user"),
        (IDS["lisbon"], "Lives in Berlin", "Lives in Lisbon", "UPDATE", "2024-07-20T10:00:00.123456-07:00",
         "2024-09-01T08:30:00-07:00", 0, "alice", "user"),
        (IDS["tea"], None, "Likes green tea", "ADD", "2025-01-05T12:00:00+00:00", None, 0, None, None),
        (IDS["deleted"], None, "Old phone number", "ADD", "2024-01-01T00:00:00+00:00", None, 0, None, None),
        (IDS["deleted"], "Old phone number", None, "DELETE", "2024-01-01T00:00:00+00:00",
         "2024-02-01T00:00:00+00:00", 1, None, None),
    ]
    con.executemany("INSERT INTO history (id, memory_id, old_memory, new_memory, event, created_at, updated_at,"
                    " is_deleted, actor_id, role) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(str(uuid.uuid4()), *r) for r in rows])
    con.commit()
    con.close()
    return path


def _qdrant_store(folder: Path) -> Path:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(folder))
    for name in ("mem0", "mem0_entities"):  # Mem0's collection and its entity collection, as create_col makes them
        client.create_collection(
            name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
            sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)})
    client.upsert("mem0", points=[models.PointStruct(id=i, vector={"": _vec(n)}, payload=p)
                                  for n, (i, p) in enumerate(PAYLOADS.items())])
    client.upsert("mem0_entities", points=[models.PointStruct(
        id=str(uuid.uuid4()), vector={"": _vec(9)}, payload={"data": "Lisbon", "linked_memory_ids": [IDS["lisbon"]]})])
    client.close()
    return folder


def _chroma_store(folder: Path) -> Path:
    import chromadb

    client = chromadb.PersistentClient(path=str(folder))
    col = client.get_or_create_collection("mem0")
    col.add(ids=list(PAYLOADS), embeddings=[_vec(n) for n in range(len(PAYLOADS))], metadatas=list(PAYLOADS.values()))
    return folder


def _export(path: Path) -> Path:
    """``Memory.get_all`` output, as Mem0's get() shapes each item."""
    items = [{"id": i, "memory": p["data"], "hash": p["hash"], "created_at": p["created_at"],
              "updated_at": p["updated_at"], **{k: p[k] for k in ("user_id", "agent_id", "run_id", "actor_id", "role")
                                                if k in p},
              **({"metadata": {"category": p["category"]}} if "category" in p else {})} for i, p in PAYLOADS.items()]
    path.write_text(json.dumps({"results": items}))
    return path


def _check_imported(mem: Memory, *, with_history: bool, org: str | None = None) -> None:
    lisbon = mem.get(IDS["lisbon"], org_id=org)  # the Mem0 id alone finds it
    assert (lisbon["memory"], lisbon["user_id"], lisbon["agent_id"]) == ("Lives in Lisbon", "alice", None)
    assert lisbon["created_at"] == "2024-07-20T17:00:00.123456Z" and lisbon["updated_at"] == "2024-09-01T15:30:00Z"
    assert lisbon["metadata"]["category"] == "home" and lisbon["metadata"]["actor_id"] == "alice"
    assert mem.get(IDS["tea"], org_id=org)["run_id"] == "trip-1"
    planner = mem.get(IDS["planner"], org_id=org)
    assert planner["agent_id"] == "planner" and planner["user_id"] is None
    events = mem.history(IDS["lisbon"], org_id=org)
    if with_history:
        assert [(e["event"], e["old_memory"], e["new_memory"]) for e in events] == [
            ("ADD", None, "Lives in Berlin"), ("UPDATE", "Lives in Berlin", "Lives in Lisbon")]
        assert events[1]["created_at"] == "2024-09-01T15:30:00Z"
    else:
        assert [e["event"] for e in events] == ["ADD"] and events[0]["created_at"].startswith("2024-07-20T17:00")
    found = mem.search("which city does she live in", user_id="alice", org_id=org)["results"]
    assert found and found[0]["id"] == IDS["lisbon"]
    assert mem.get_all(user_id="bob", org_id=org)["results"] == []


def test_export_json(mem: Memory, tmp_path: Path) -> None:
    data = read_mem0(_export(tmp_path / "mem0-export.json"))
    assert (data.source, len(data.memories)) == ("export", 3)
    assert import_mem0(mem, data) == {"read": 3, "imported": 3, "skipped": 0, "history": 3, "scopes": 3}
    _check_imported(mem, with_history=False)
    assert import_mem0(mem, data)["skipped"] == 3  # a second run adds nothing
    assert len(mem.get_all(user_id="alice")["results"]) == 1


def test_qdrant_store_with_history_db(mem: Memory, tmp_path: Path) -> None:
    folder = _qdrant_store(tmp_path / "qdrant")
    _history_db(tmp_path / "history.db")  # beside the store folder, where it is looked for
    data = read_mem0(folder)
    assert data.source == "qdrant" and {m.id for m in data.memories} == set(PAYLOADS)
    result = import_mem0(mem, data, org_id="acme")
    assert result["imported"] == 3 and result["history"] == 4
    with pytest.raises(KeyError):
        mem.get(IDS["lisbon"], org_id="default")
    _check_imported(mem, with_history=True, org="acme")


def test_chroma_store_with_explicit_history_db(mem: Memory, tmp_path: Path) -> None:
    folder = _chroma_store(tmp_path / "chroma")
    data = read_mem0(folder, history_db=_history_db(tmp_path / "elsewhere.db"))
    assert data.source == "chroma"
    import_mem0(mem, data)
    _check_imported(mem, with_history=True)


def test_cli_import_from_mem0(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    folder = _qdrant_store(tmp_path / "qdrant")
    history = _history_db(tmp_path / "h.db")
    run = CliRunner().invoke
    r = run(main, ["--store", url, "--embedder", "hash", "--json", "import", "--from", "mem0", str(folder),
                   "--history-db", str(history)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["imported"] == 3
    r = run(main, ["--store", url, "--embedder", "hash", "get", IDS["lisbon"]])
    assert r.exit_code == 0 and "Lives in Lisbon" in r.output, r.output
    r = run(main, ["--store", url, "--embedder", "hash", "import", "--from", "mem0", str(folder), "--user", "x"])
    assert r.exit_code == 2 and "own scopes" in r.output
    r = run(main, ["--store", url, "--embedder", "hash", "import", "--from", "mem0", str(tmp_path)])
    assert r.exit_code == 2 and "not a Mem0 export" in r.output


def test_bad_mem0_input_writes_nothing(mem: Memory, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    for content, message in (
        ("{not json", "neither JSON"),
        (json.dumps({"results": [{"id": "1", "memory": "x", "created_at": "2025-01-01T00:00:00Z"}]}),
         "no user_id"),
        (json.dumps([{"id": "1", "memory": "x", "user_id": "u", "created_at": "yesterday"}]), "ISO 8601"),
        (json.dumps([{"id": "1", "user_id": "u", "created_at": "2025-01-01T00:00:00Z"}]), "'memory'"),
        (json.dumps({"count": 3}), "list of memories"),
    ):
        bad.write_text(content)
        with pytest.raises(InvalidInputError, match=message):
            read_mem0(bad)
    with pytest.raises(InvalidInputError, match="collection"):
        read_mem0(_qdrant_store(tmp_path / "q"), collection="nope")
    (tmp_path / "notes.db").write_text("not sqlite")
    with pytest.raises(InvalidInputError, match="history"):
        read_mem0(_export(tmp_path / "e.json"), history_db=tmp_path / "notes.db")
    assert mem.stats()["memories"] == 0
