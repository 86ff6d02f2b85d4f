-- One run of a resource at a time, cluster-wide, whatever the run answers: a lease per
-- resource that its holder renews while the run lives. Expiry is judged by the database
-- clock (now()), so replicas whose clocks disagree still agree on who holds what.
CREATE TABLE run_leases (
    resource_uid text        PRIMARY KEY,
    holder       text        NOT NULL,   -- "<instance>/<process token>": a restart is a new holder
    run_id       bigint,                 -- the sync_runs row of the run it guards, once claimed
    claim_key    text,
    acquired_at  timestamptz NOT NULL DEFAULT now(),
    renewed_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);

-- "Never twice for the same request" stays, but only over runs that produced (or may still
-- produce) a result: a run cancelled by Replace or abandoned by a dead holder keeps its row,
-- and the retry of the same request gets a row of its own.
ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_resource_uid_claim_key_key;
CREATE UNIQUE INDEX sync_runs_claim ON sync_runs (resource_uid, claim_key)
    WHERE state NOT IN ('Cancelled', 'Abandoned');

-- What the status is rebuilt from when the process that ran it died before its status
-- patch landed: the generation the run used, its length, and whether the status landed.
ALTER TABLE sync_runs ADD COLUMN generation bigint;
ALTER TABLE sync_runs ADD COLUMN seconds double precision;
ALTER TABLE sync_runs ADD COLUMN holder text;
ALTER TABLE sync_runs ADD COLUMN status_written_at timestamptz;
-- Runs finished before this version had their status written, or never will: don't replay them.
UPDATE sync_runs SET status_written_at = finished_at WHERE finished_at IS NOT NULL;
