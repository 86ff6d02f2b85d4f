-- A run is claimed by what it answers, not only by a time: "schedule:<due time>",
-- "manual:<requestedAt>", "generation:<n>", "startup". Every replica derives the same key
-- from the resource's status and metadata, so a manual request or a spec change runs once
-- however many replicas see it (a time taken from each replica's clock would differ).
ALTER TABLE sync_runs ADD COLUMN claim_key text;
UPDATE sync_runs SET claim_key = 'time:' || to_char(scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
ALTER TABLE sync_runs ALTER COLUMN claim_key SET NOT NULL;
ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_resource_uid_scheduled_at_key;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_resource_uid_claim_key_key UNIQUE (resource_uid, claim_key);
