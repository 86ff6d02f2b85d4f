-- Upstream rate-limit windows shared between processes: when the slots one process's requests
-- took free again, so that the next process (a CLI run after the operator's, a replica taking
-- over) waits for them instead of learning from a 429. store/rate_windows.py reads and writes
-- it; times are the database's clock, so hosts whose clocks disagree still agree here.
CREATE TABLE upstream_rate_windows (
    -- The budget's name (upstream kind, host, workspace or account, resource); no secret.
    budget_key  text          NOT NULL,
    -- A random name for the writing process (RateLimiterRegistry.writer).
    writer      text          NOT NULL,
    -- When each slot the writer held frees, one element per request it sent in the window.
    frees_at    timestamptz[] NOT NULL,
    -- The latest of frees_at: rows past it hold nothing and are deleted by the next save.
    held_until  timestamptz   NOT NULL,
    saved_at    timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (budget_key, writer)
);
