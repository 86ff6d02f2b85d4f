-- The change log: one append-only row per inventory row a run inserted, updated, soft-deleted
-- or brought back. Written by the same statement as the change it records (store/statements.py,
-- store/changes.py), so it commits or rolls back with it and can never disagree with the data.
-- docs/database.md describes every column and has example queries.

CREATE TABLE inventory_changes (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- sync_runs.id of the run that made the change; NULL outside a run (the operator's
    -- retirement of a deleted Fabric's rows). No foreign key: one check per logged row would
    -- cost the merge, and run rows are never deleted before their changes.
    run_id          bigint,
    source          text        NOT NULL,  -- the run's source name (a Fabric: the Kind)
    table_name      text        NOT NULL,  -- glp_devices, central_devices, fabric_objects, ...
    scope           text        NOT NULL,  -- workspace_id, account_id or the fabric scope
    key             text        NOT NULL,  -- the row's id within its scope
    operation       text        NOT NULL
        CHECK (operation IN ('insert', 'update', 'delete', 'undelete')),
    -- update/undelete: the typed columns whose value changed.
    changed_columns text[],
    -- update/undelete: {"<top-level field of data>": {"old": ..., "new": ...}} for each field
    -- that differs; a value above 1 KiB is replaced by {"truncated": true, "bytes", "md5"}.
    -- Copied from the stored rows, which are redacted before storage: no secret can appear.
    changes         jsonb,
    reason          text,                  -- delete: why (fabric_objects.deleted_reason values)
    changed_at      timestamptz NOT NULL,  -- the row's changed_at after the change (run clock)
    recorded_at     timestamptz NOT NULL DEFAULT now()  -- the database's clock at the write
);
-- "What did run N change" (what a LISTEN consumer asks after each notification).
CREATE INDEX inventory_changes_run ON inventory_changes (run_id);
-- Per-row and per-device history.
CREATE INDEX inventory_changes_key ON inventory_changes (key);
-- "Changes since" and retention pruning: the log is appended in time order, so a BRIN index is
-- a few pages whatever the size, and costs the merge almost nothing.
CREATE INDEX inventory_changes_recorded ON inventory_changes USING brin (recorded_at);

-- A changed value as the log keeps it: small values whole, larger ones by size and digest, so
-- one log row stays bounded whatever the document (a fabric object's status can be large).
CREATE FUNCTION inventory_change_value(value jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN value IS NULL OR octet_length(value::text) <= 1024 THEN value
                ELSE jsonb_build_object('truncated', true, 'bytes', octet_length(value::text),
                                        'md5', md5(value::text)) END
$$;

-- The log with the resource whose run made each change.
CREATE VIEW inventory_change_log AS
SELECT c.id, c.run_id, r.resource_kind, r.resource_namespace, r.resource_name,
       c.source, c.table_name, c.scope, c.key, c.operation, c.changed_columns, c.changes,
       c.reason, c.changed_at, c.recorded_at
FROM inventory_changes c
LEFT JOIN sync_runs r ON r.id = c.run_id;

-- Changes recorded after `since` (database clock), oldest first.
CREATE FUNCTION inventory_changes_since(since timestamptz) RETURNS SETOF inventory_change_log
LANGUAGE sql STABLE AS $$
    SELECT * FROM inventory_change_log WHERE recorded_at > since ORDER BY id
$$;

-- Changes to devices (GreenLake, New Central, classic Central) with their serial number.
-- GreenLake rows are keyed by a device id: its serial comes from the stored device.
CREATE VIEW device_changes AS
SELECT coalesce(g.serial_number, l.key) AS serial_number, l.*
FROM inventory_change_log l
LEFT JOIN glp_devices g
       ON l.table_name = 'glp_devices' AND g.workspace_id = l.scope AND g.id = l.key
WHERE l.table_name IN ('glp_devices', 'central_devices', 'central_classic_devices');

-- One device's history across every source, oldest first, by serial number (index lookups:
-- the serial itself for Central and classic rows, the GreenLake ids carrying that serial).
CREATE FUNCTION device_history(device_serial text) RETURNS SETOF device_changes
LANGUAGE sql STABLE AS $$
    SELECT * FROM device_changes h
    WHERE h.serial_number = device_serial
      AND h.key IN (SELECT d.id FROM glp_devices d WHERE d.serial_number = device_serial
                    UNION ALL SELECT device_serial)
    ORDER BY h.id
$$;
