-- Hedgehog fabric inventory: every listed custom resource of every Fabric, one table for all kinds.
-- The scope is "<fabric uid>/<group>/<Kind>": deletions are judged per kind, so a kind whose
-- listing failed (or whose CRD is missing) never soft-deletes its rows.

CREATE TABLE fabric_objects (
    scope            text        NOT NULL,
    id               text        NOT NULL,  -- metadata.uid
    fabric_uid       text        NOT NULL,
    fabric_namespace text        NOT NULL,
    fabric_name      text        NOT NULL,
    api_group        text        NOT NULL,
    api_version      text        NOT NULL,  -- "group/version", as in the object
    kind             text        NOT NULL,
    namespace        text,                  -- NULL for cluster-scoped kinds
    name             text        NOT NULL,
    -- The resourceVersion of the last stored content change: it is not part of the change
    -- check (a version bump with identical content rewrites nothing), so it may lag the cluster.
    resource_version text,
    labels           jsonb       NOT NULL,
    spec             jsonb,
    status           jsonb,
    -- The object without managedFields, resourceVersion and the last-applied annotation, plus
    -- `id`, `fabric` and a top-level `resourceVersion` (ignored when comparing).
    data             jsonb       NOT NULL,
    first_seen       timestamptz NOT NULL,
    changed_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    PRIMARY KEY (scope, id)
);
CREATE INDEX fabric_objects_fabric_kind ON fabric_objects (fabric_uid, kind);
CREATE INDEX fabric_objects_kind_name ON fabric_objects (kind, namespace, name);

-- Live objects with their "last seen" time: their kind's last complete listing.
CREATE VIEW fabric_objects_current AS
    SELECT f.*, s.last_complete_at AS last_seen
    FROM fabric_objects f
    LEFT JOIN sync_scopes s ON s.source_kind = 'fabric' AND s.workspace_id = f.scope
    WHERE f.deleted_at IS NULL;
