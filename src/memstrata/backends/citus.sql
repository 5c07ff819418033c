-- Distributing a memstrata PostgreSQL store over a Citus cluster, by scope.
--
-- NOT RUN by memstrata, its migrations or its tests: Citus cannot be installed on the machine this
-- project is developed and tested on, so the Citus half of this file (part 2) has never been executed.
-- Part 1 is plain PostgreSQL and is applied to a real database by tests/test_citus_keys.py.
-- Run it once, on the coordinator, against a database already at the current schema version
-- (memstrata migrate), with no memstrata process writing. docs/scaling.md explains the choices.
--
-- Distribution column: scope_key (org, user, agent, run), the column every statement of the store
-- filters on, so each search, lookup and write of a scope runs on one shard. All per-scope tables are
-- co-located with scope_counts, so joins between them (kNN joins memory_vectors to memories, BM25 joins
-- memories to scope_counts, the graph joins memory_entities, entities and edges) stay on that shard.

BEGIN;

-- Part 1: every primary key and unique constraint of a distributed table must hold the distribution
-- column. Today several hold a global surrogate (rid) or a global id instead.

ALTER TABLE memory_vectors DROP CONSTRAINT memory_vectors_memory_rid_fkey;
ALTER TABLE memory_vectors DROP CONSTRAINT memory_vectors_pkey;
ALTER TABLE memory_vectors ADD PRIMARY KEY (scope_key, memory_rid, chunk);
ALTER TABLE memory_sentences DROP CONSTRAINT memory_sentences_memory_rid_fkey;
ALTER TABLE memory_sentences DROP CONSTRAINT memory_sentences_pkey;
ALTER TABLE memory_sentences ADD PRIMARY KEY (scope_key, memory_rid);

ALTER TABLE memories DROP CONSTRAINT memories_pkey;
ALTER TABLE memories ADD PRIMARY KEY (scope_key, rid);
ALTER TABLE memories DROP CONSTRAINT memories_id_key;
ALTER TABLE memories ADD CONSTRAINT memories_id_key UNIQUE (scope_key, id);

ALTER TABLE memory_vectors ADD CONSTRAINT memory_vectors_memory_fkey
    FOREIGN KEY (scope_key, memory_rid) REFERENCES memories (scope_key, rid) ON DELETE CASCADE;
ALTER TABLE memory_sentences ADD CONSTRAINT memory_sentences_memory_fkey
    FOREIGN KEY (scope_key, memory_rid) REFERENCES memories (scope_key, rid) ON DELETE CASCADE;

-- episodes is partitioned by occurred_at: its key needs both the partition and the distribution column.
ALTER TABLE episodes DROP CONSTRAINT episodes_pkey;
ALTER TABLE episodes ADD PRIMARY KEY (scope_key, id, occurred_at);

ALTER TABLE history DROP CONSTRAINT history_pkey;
ALTER TABLE history ADD PRIMARY KEY (scope_key, rid);
ALTER TABLE history DROP CONSTRAINT history_id_key;
ALTER TABLE history ADD CONSTRAINT history_id_key UNIQUE (scope_key, id);

ALTER TABLE entities DROP CONSTRAINT entities_pkey;
ALTER TABLE entities ADD PRIMARY KEY (scope_key, rid);
ALTER TABLE entities DROP CONSTRAINT entities_id_key;
ALTER TABLE entities ADD CONSTRAINT entities_id_key UNIQUE (scope_key, id);
-- entities (scope_key, name_key) and memory_entities (scope_key, entity_id, memory_id) already qualify.

ALTER TABLE edges DROP CONSTRAINT edges_pkey;
ALTER TABLE edges ADD PRIMARY KEY (scope_key, rid);

ALTER TABLE conflicts DROP CONSTRAINT conflicts_pkey;
ALTER TABLE conflicts ADD PRIMARY KEY (scope_key, rid);
ALTER TABLE conflicts DROP CONSTRAINT conflicts_id_key;
ALTER TABLE conflicts ADD CONSTRAINT conflicts_id_key UNIQUE (scope_key, id);

COMMIT;

-- Part 2: Citus. Needs `shared_preload_libraries = 'citus'` and the citus and vector extensions on the
-- coordinator and every worker (pgvector indexes are built per shard).

CREATE EXTENSION IF NOT EXISTS citus;

SELECT create_distributed_table('scope_counts', 'scope_key');
SELECT create_distributed_table('memories', 'scope_key', colocate_with => 'scope_counts');
SELECT create_distributed_table('memory_vectors', 'scope_key', colocate_with => 'scope_counts');
SELECT create_distributed_table('memory_sentences', 'scope_key', colocate_with => 'scope_counts');
SELECT create_distributed_table('episodes', 'scope_key', colocate_with => 'scope_counts');
SELECT create_distributed_table('history', 'scope_key', colocate_with => 'scope_counts');
SELECT create_distributed_table('entities', 'scope_key', colocate_with => 'scope_counts');
SELECT create_distributed_table('memory_entities', 'scope_key', colocate_with => 'scope_counts');
SELECT create_distributed_table('edges', 'scope_key', colocate_with => 'scope_counts');
SELECT create_distributed_table('conflicts', 'scope_key', colocate_with => 'scope_counts');

-- Small tables read on every request or by every node: copied to all nodes.
SELECT create_reference_table('store_settings');
SELECT create_reference_table('schema_migrations');
SELECT create_reference_table('api_keys');
SELECT create_reference_table('data_keys');
SELECT create_reference_table('retention_policies');
SELECT create_reference_table('legal_holds');

-- The audit chain is one sequence appended under an advisory lock: it stays a single table on the
-- coordinator (added to Citus's metadata so distributed queries can still join it).
SELECT citus_add_local_table_to_metadata('audit_log');
