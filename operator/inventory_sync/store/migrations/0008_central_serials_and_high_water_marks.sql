-- New Central devices are keyed by serial number: the vendor's example items repeat the serial
-- as `id`, and public clients (pycentral 2.x) read no other id. Rows stored under another id
-- (an older simulator served uuids) are re-keyed in place, keeping first_seen and history.
-- Where one workspace holds two rows with the same serial, the live, most recently changed one
-- takes the serial; the others keep their old id and are soft-deleted (never dropped).
WITH ranked AS (
    SELECT workspace_id, id,
           row_number() OVER (PARTITION BY workspace_id, serial_number
                              ORDER BY (id = serial_number) DESC, (deleted_at IS NULL) DESC,
                                       changed_at DESC, id) AS rank
    FROM central_devices
    WHERE serial_number IS NOT NULL AND serial_number <> ''
)
UPDATE central_devices c
SET deleted_at = coalesce(c.deleted_at, now()), changed_at = now()
FROM ranked r
WHERE r.workspace_id = c.workspace_id AND r.id = c.id AND r.rank > 1 AND c.deleted_at IS NULL;

WITH ranked AS (
    SELECT workspace_id, id,
           row_number() OVER (PARTITION BY workspace_id, serial_number
                              ORDER BY (id = serial_number) DESC, (deleted_at IS NULL) DESC,
                                       changed_at DESC, id) AS rank
    FROM central_devices
    WHERE serial_number IS NOT NULL AND serial_number <> ''
)
UPDATE central_devices c
SET id = c.serial_number
FROM ranked r
WHERE r.workspace_id = c.workspace_id AND r.id = c.id AND r.rank = 1
  AND c.id <> c.serial_number
  AND NOT EXISTS (SELECT 1 FROM central_devices o
                  WHERE o.workspace_id = c.workspace_id AND o.id = c.serial_number);

-- Incremental sync: the newest upstream `updatedAt` a consistent walk of the scope has seen
-- (capped by the server's clock), and when the last full walk finished. See docs/sync-engine.md.
ALTER TABLE sync_scopes ADD COLUMN high_water_mark timestamptz;
ALTER TABLE sync_scopes ADD COLUMN last_full_at timestamptz;
UPDATE sync_scopes SET last_full_at = last_complete_at;
