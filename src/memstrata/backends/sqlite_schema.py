"""Versioned schema for the embedded SQLite store. Append a migration; never edit a shipped one."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: the four durable tiers
    """
    CREATE TABLE scope_versions (scope_key TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;

    CREATE TABLE episodes (
        rid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        scope_key TEXT NOT NULL,
        scope_tok TEXT NOT NULL,
        org_id TEXT NOT NULL, user_id TEXT, agent_id TEXT, run_id TEXT,
        conversation_id TEXT,
        role TEXT NOT NULL,
        name TEXT,
        content TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        position INTEGER NOT NULL DEFAULT 0,
        occurred_at REAL NOT NULL,
        created_at REAL NOT NULL,
        extraction_status TEXT NOT NULL DEFAULT 'done',
        extraction_error TEXT,
        fts_text TEXT
    );
    CREATE INDEX episodes_scope_time ON episodes (scope_key, occurred_at, id);
    CREATE INDEX episodes_scope_conv ON episodes (scope_key, conversation_id, occurred_at);
    CREATE INDEX episodes_scope_status ON episodes (scope_key, extraction_status);
    CREATE VIRTUAL TABLE episodes_fts USING fts5 (
        content, scope_tok, content='episodes', content_rowid='rid', tokenize='porter unicode61'
    );
    CREATE TRIGGER episodes_ai AFTER INSERT ON episodes BEGIN
        INSERT INTO episodes_fts (rowid, content, scope_tok)
        VALUES (new.rid, coalesce(new.fts_text, new.content), new.scope_tok);
    END;
    CREATE TRIGGER episodes_ad AFTER DELETE ON episodes BEGIN
        INSERT INTO episodes_fts (episodes_fts, rowid, content, scope_tok)
        VALUES ('delete', old.rid, coalesce(old.fts_text, old.content), old.scope_tok);
    END;

    CREATE TABLE memories (
        rid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        scope_key TEXT NOT NULL,
        scope_tok TEXT NOT NULL,
        org_id TEXT NOT NULL, user_id TEXT, agent_id TEXT, run_id TEXT,
        conversation_id TEXT,
        text TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        episode_ids TEXT NOT NULL DEFAULT '[]',
        entities TEXT NOT NULL DEFAULT '[]',
        kind TEXT NOT NULL DEFAULT 'fact',
        importance REAL NOT NULL DEFAULT 0.5,
        confidence REAL NOT NULL DEFAULT 1.0,
        confidence_reason TEXT NOT NULL DEFAULT '',
        source_role TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        valid_from REAL NOT NULL,
        valid_to REAL,
        expired_at REAL,
        superseded_by TEXT,
        mention_count INTEGER NOT NULL DEFAULT 1,
        last_seen_at REAL,
        last_accessed_at REAL,
        access_count INTEGER NOT NULL DEFAULT 0,
        slot_subject TEXT, slot_attribute TEXT, slot_value TEXT,
        fts_text TEXT
    );
    CREATE INDEX memories_scope_created ON memories (scope_key, created_at, id);
    CREATE INDEX memories_scope_hash ON memories (scope_key, content_hash);
    CREATE INDEX memories_scope_slot ON memories (scope_key, slot_subject, slot_attribute);
    CREATE TABLE memory_vectors (
        memory_rid INTEGER NOT NULL REFERENCES memories (rid) ON DELETE CASCADE,
        chunk INTEGER NOT NULL,
        scope_key TEXT NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (memory_rid, chunk)
    );
    CREATE INDEX memory_vectors_scope ON memory_vectors (scope_key);
    CREATE VIRTUAL TABLE memories_fts USING fts5 (
        text, scope_tok, content='memories', content_rowid='rid', tokenize='porter unicode61'
    );
    CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, text, scope_tok)
        VALUES (new.rid, coalesce(new.fts_text, new.text), new.scope_tok);
    END;
    CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, text, scope_tok)
        VALUES ('delete', old.rid, coalesce(old.fts_text, old.text), old.scope_tok);
    END;
    CREATE TRIGGER memories_au AFTER UPDATE OF text, fts_text ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, text, scope_tok)
        VALUES ('delete', old.rid, coalesce(old.fts_text, old.text), old.scope_tok);
        INSERT INTO memories_fts (rowid, text, scope_tok)
        VALUES (new.rid, coalesce(new.fts_text, new.text), new.scope_tok);
    END;

    CREATE TABLE history (
        rid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        scope_key TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        event TEXT NOT NULL,
        old_memory TEXT,
        new_memory TEXT,
        actor TEXT NOT NULL,
        reason TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    );
    CREATE INDEX history_scope_memory ON history (scope_key, memory_id, rid);

    CREATE TABLE entities (
        rid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        scope_key TEXT NOT NULL,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL,
        label TEXT NOT NULL,
        aliases TEXT NOT NULL DEFAULT '[]',
        mention_count INTEGER NOT NULL DEFAULT 1,
        created_at REAL NOT NULL,
        UNIQUE (scope_key, name_key)
    );
    CREATE TABLE memory_entities (
        scope_key TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        PRIMARY KEY (scope_key, entity_id, memory_id)
    ) WITHOUT ROWID;
    CREATE INDEX memory_entities_memory ON memory_entities (scope_key, memory_id);
    CREATE TABLE edges (
        rid INTEGER PRIMARY KEY,
        scope_key TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        relation TEXT NOT NULL,
        object_id TEXT NOT NULL,
        memory_id TEXT,
        episode_id TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX edges_scope_subject ON edges (scope_key, subject_id);
    CREATE INDEX edges_scope_object ON edges (scope_key, object_id);
    CREATE INDEX edges_scope_memory ON edges (scope_key, memory_id);

    CREATE TABLE conflicts (
        rid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        scope_key TEXT NOT NULL,
        new_memory_id TEXT NOT NULL,
        old_memory_id TEXT NOT NULL,
        subject TEXT NOT NULL, attribute TEXT NOT NULL,
        old_value TEXT NOT NULL, new_value TEXT NOT NULL,
        policy TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        resolved_at REAL,
        resolution TEXT
    );
    CREATE INDEX conflicts_scope_status ON conflicts (scope_key, status);
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations in order, each in its own transaction; return the resulting version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        from memstrata.errors import ConfigurationError

        raise ConfigurationError(
            f"store: the database is at schema version {version}, newer than this memstrata "
            f"({len(MIGRATIONS)}); upgrade"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process opening the same new file may have got here first.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                conn.execute("COMMIT")
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """Split a script on ';' outside trigger bodies (sqlite3.complete_statement knows BEGIN…END)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out

MIGRATIONS.append(
    # 2: the control plane — API keys, audit log, per-user data keys, retention policies and legal holds.
    """
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        name TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        scopes TEXT NOT NULL,
        user_ids TEXT,
        agent_ids TEXT,
        created_at REAL NOT NULL,
        revoked_at REAL,
        last_used_at REAL
    );
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        org_id TEXT NOT NULL,
        scope_key TEXT,
        operation TEXT NOT NULL,
        memory_ids TEXT NOT NULL DEFAULT '[]',
        details TEXT NOT NULL DEFAULT '{}',
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_scope ON audit_log (scope_key, seq);
    CREATE TABLE data_keys (
        subject_key TEXT PRIMARY KEY,
        wrapped_key BLOB,
        master_key_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        destroyed_at REAL
    );
    CREATE TABLE retention_policies (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        tier TEXT NOT NULL,
        category TEXT,
        max_age_seconds REAL NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (org_id, tier, category)
    );
    CREATE TABLE legal_holds (
        org_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (org_id, user_id)
    );
    """
)

MIGRATIONS.append(
    # 3: queued ingestion — one row per queued add; its messages are episodes with the status 'queued'.
    """
    CREATE TABLE ingestions (
        id TEXT PRIMARY KEY,
        scope_key TEXT NOT NULL,
        idempotency_key TEXT,
        episode_ids TEXT NOT NULL,
        infer INTEGER NOT NULL,
        conversation_id TEXT,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        leased_by TEXT,
        lease_until REAL,
        next_at REAL NOT NULL,
        error TEXT,
        report TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE UNIQUE INDEX ingestions_idempotency ON ingestions (scope_key, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX ingestions_ready ON ingestions (state, next_at);
    CREATE INDEX ingestions_scope ON ingestions (scope_key, state, created_at);
    """
)

MIGRATIONS.append(
    # 4: sentence vectors of long messages, one row per memory ((n, dim) float16), deleted with the memory.
    """
    CREATE TABLE memory_sentences (
        memory_rid INTEGER PRIMARY KEY REFERENCES memories (rid) ON DELETE CASCADE,
        scope_key TEXT NOT NULL,
        n INTEGER NOT NULL,
        vectors BLOB NOT NULL
    );
    CREATE INDEX memory_sentences_scope ON memory_sentences (scope_key);
    """
)
