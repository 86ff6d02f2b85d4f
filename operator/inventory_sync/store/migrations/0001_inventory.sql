-- Inventory tables for GreenLake and Aruba Central, scoped by workspace, plus the run history.
-- Open-ended upstream enums are plain text: a new vendor value must never be rejected.

CREATE OR REPLACE FUNCTION inventory_try_timestamptz(value text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN value::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;  -- a malformed upstream timestamp must not fail the whole merge; data keeps it
END $$;

CREATE OR REPLACE FUNCTION inventory_try_bigint(value text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value ~ '^\s*-?[0-9]{1,18}\s*$' THEN value::bigint END
$$;

-- When a complete, consistent fetch of a scope last finished: a live row's "last seen" time.
CREATE TABLE sync_scopes (
    source_kind      text        NOT NULL,
    workspace_id     text        NOT NULL,
    last_complete_at timestamptz NOT NULL,
    PRIMARY KEY (source_kind, workspace_id)
);

CREATE TABLE glp_subscriptions (
    workspace_id        text        NOT NULL,
    id                  text        NOT NULL,
    key                 text,
    subscription_type   text,
    subscription_status text,
    sku                 text,
    tier                text,
    product_type        text,
    quantity            bigint,
    available_quantity  bigint,
    is_eval             boolean,
    start_time          timestamptz,
    end_time            timestamptz,
    upstream_updated_at timestamptz,
    data                jsonb       NOT NULL,
    first_seen          timestamptz NOT NULL,
    changed_at          timestamptz NOT NULL,
    deleted_at          timestamptz,
    PRIMARY KEY (workspace_id, id)
);

CREATE TABLE glp_devices (
    workspace_id        text        NOT NULL,
    id                  text        NOT NULL,
    serial_number       text,
    mac_address         text,
    part_number         text,
    model               text,
    device_type         text,
    assigned_state      text,
    archived            boolean,
    region              text,
    upstream_updated_at timestamptz,
    data                jsonb       NOT NULL,
    first_seen          timestamptz NOT NULL,
    changed_at          timestamptz NOT NULL,
    deleted_at          timestamptz,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX glp_devices_serial ON glp_devices (serial_number);

-- Links whose subscription is known. Both sides are foreign keys: orphans are impossible.
CREATE TABLE glp_device_subscriptions (
    workspace_id    text        NOT NULL,
    device_id       text        NOT NULL,
    subscription_id text        NOT NULL,
    first_seen      timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, device_id, subscription_id),
    FOREIGN KEY (workspace_id, device_id) REFERENCES glp_devices (workspace_id, id),
    FOREIGN KEY (workspace_id, subscription_id) REFERENCES glp_subscriptions (workspace_id, id)
);
CREATE INDEX glp_device_subscriptions_subscription
    ON glp_device_subscriptions (workspace_id, subscription_id);

-- Links naming a subscription the subscriptions list does not contain (GreenLake allows it).
-- Kept here rather than dropped or forced through the FK; a later device sync moves a link to
-- glp_device_subscriptions once its subscription has been synced.
CREATE TABLE glp_unresolved_subscription_links (
    workspace_id    text        NOT NULL,
    device_id       text        NOT NULL,
    subscription_id text        NOT NULL,
    resource_uri    text,
    first_seen      timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, device_id, subscription_id),
    FOREIGN KEY (workspace_id, device_id) REFERENCES glp_devices (workspace_id, id)
);

CREATE TABLE central_devices (
    workspace_id     text        NOT NULL,
    id               text        NOT NULL,
    serial_number    text,
    device_name      text,
    device_type      text,
    mac_address      text,
    model            text,
    part_number      text,
    status           text,
    software_version text,
    site_id          text,
    site_name        text,
    last_seen_at     timestamptz,
    data             jsonb       NOT NULL,
    first_seen       timestamptz NOT NULL,
    changed_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX central_devices_serial ON central_devices (serial_number);

CREATE TABLE sync_runs (
    id                 bigserial   PRIMARY KEY,
    resource_kind      text        NOT NULL,
    resource_namespace text        NOT NULL,
    resource_name      text        NOT NULL,
    resource_uid       text        NOT NULL,
    scheduled_at       timestamptz NOT NULL,
    trigger            text        NOT NULL,
    started_at         timestamptz NOT NULL,
    finished_at        timestamptz,
    state              text        NOT NULL,
    error              text,
    sources            jsonb       NOT NULL DEFAULT '[]'::jsonb,
    -- The real guard against two replicas running the same scheduled run twice.
    UNIQUE (resource_uid, scheduled_at)
);
CREATE INDEX sync_runs_resource ON sync_runs (resource_uid, started_at DESC);

-- Live rows with their "last seen" time derived from the scope's last complete fetch.
CREATE VIEW glp_devices_current AS
    SELECT d.*, s.last_complete_at AS last_seen
    FROM glp_devices d
    LEFT JOIN sync_scopes s ON s.source_kind = 'greenlake/devices' AND s.workspace_id = d.workspace_id
    WHERE d.deleted_at IS NULL;

CREATE VIEW glp_subscriptions_current AS
    SELECT t.*, s.last_complete_at AS last_seen
    FROM glp_subscriptions t
    LEFT JOIN sync_scopes s
        ON s.source_kind = 'greenlake/subscriptions' AND s.workspace_id = t.workspace_id
    WHERE t.deleted_at IS NULL;

CREATE VIEW central_devices_current AS
    SELECT c.*, s.last_complete_at AS last_seen
    FROM central_devices c
    LEFT JOIN sync_scopes s ON s.source_kind = 'arubaCentral' AND s.workspace_id = c.workspace_id
    WHERE c.deleted_at IS NULL;
