-- The merge decides "unchanged" by a content hash computed once per item by the client
-- (store/staging.py) instead of parsing and comparing every stored document. Rows stored
-- before this migration have none: the merge compares their content the old way and, where it
-- is unchanged, records the hash without touching changed_at (one write per row, once).
ALTER TABLE glp_subscriptions ADD COLUMN content_hash bytea;
ALTER TABLE glp_devices ADD COLUMN content_hash bytea;
ALTER TABLE central_devices ADD COLUMN content_hash bytea;
ALTER TABLE central_classic_devices ADD COLUMN content_hash bytea;
ALTER TABLE fabric_objects ADD COLUMN content_hash bytea;

-- The ids each walk has delivered so far, one unlogged table per walk (store/walks.py): a source
-- borrows a connection only while a page merges, so a temp table cannot hold them, and an
-- unlogged table writes no WAL and is dropped whole when the walk ends.
CREATE SCHEMA sync_walks;
