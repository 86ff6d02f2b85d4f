-- One row per device serial number known to GreenLake, New Central or classic Central (live
-- rows only), with what each source says about it and which source each shared fact came from.
-- docs/database.md has example queries.
--
-- A serial in several scopes of one source (two workspaces of a schedule) is shown from the
-- most recently changed of them; `glp_workspace_id` / `central_workspace_id` /
-- `classic_account_id` say which. Lookups by serial number use each table's serial index: the
-- serial list is a UNION that a `WHERE serial_number = …` reaches into, and each source is a
-- LATERAL probe by serial.
CREATE VIEW devices_unified AS
SELECT s.serial_number,
       g.id IS NOT NULL AS in_greenlake,
       c.id IS NOT NULL AS in_central,
       k.id IS NOT NULL AS in_central_classic,
       array_remove(ARRAY[CASE WHEN g.id IS NOT NULL THEN 'greenlake' END,
                          CASE WHEN c.id IS NOT NULL THEN 'central' END,
                          CASE WHEN k.id IS NOT NULL THEN 'central-classic' END], NULL) AS sources,
       -- Facts more than one source knows: GreenLake first (the system of record for
       -- hardware and entitlement), then New Central, then classic; *_from names the table.
       coalesce(g.mac_address, c.mac_address, k.mac_address) AS mac_address,
       CASE WHEN g.mac_address IS NOT NULL THEN 'glp_devices'
            WHEN c.mac_address IS NOT NULL THEN 'central_devices'
            WHEN k.mac_address IS NOT NULL THEN 'central_classic_devices' END AS mac_address_from,
       coalesce(g.model, c.model, k.model) AS model,
       CASE WHEN g.model IS NOT NULL THEN 'glp_devices'
            WHEN c.model IS NOT NULL THEN 'central_devices'
            WHEN k.model IS NOT NULL THEN 'central_classic_devices' END AS model_from,
       coalesce(g.part_number, c.part_number, k.part_number) AS part_number,
       CASE WHEN g.part_number IS NOT NULL THEN 'glp_devices'
            WHEN c.part_number IS NOT NULL THEN 'central_devices'
            WHEN k.part_number IS NOT NULL THEN 'central_classic_devices' END AS part_number_from,
       -- GreenLake (glp_devices and its links): inventory and subscriptions.
       g.workspace_id AS glp_workspace_id,
       g.id AS glp_device_id,
       g.device_type AS glp_device_type,
       g.assigned_state AS glp_assigned_state,
       g.archived AS glp_archived,
       g.region AS glp_region,
       coalesce(subs.subscriptions, '[]'::jsonb) AS subscriptions,
       coalesce(subs.keys, '{}') AS subscription_keys,
       coalesce(pending.ids, '{}') AS unresolved_subscription_ids,
       g.changed_at AS glp_changed_at,
       g.last_seen AS glp_last_seen,
       -- New Central (central_devices): status and site.
       c.workspace_id AS central_workspace_id,
       c.device_name AS central_device_name,
       c.device_type AS central_device_type,
       c.status AS central_status,
       c.site_id AS central_site_id,
       c.site_name AS central_site_name,
       c.software_version AS central_software_version,
       c.last_seen_at AS central_last_seen_at,
       c.changed_at AS central_changed_at,
       c.last_seen AS central_last_seen,
       -- Classic Central (central_classic_devices): the account's inventory.
       k.account_id AS classic_account_id,
       k.device_type AS classic_device_type,
       k.customer_name AS classic_customer_name,
       k.tier_type AS classic_tier_type,
       k.services AS classic_services,
       k.changed_at AS classic_changed_at,
       k.last_seen AS classic_last_seen
FROM (
    SELECT serial_number FROM glp_devices WHERE deleted_at IS NULL AND serial_number <> ''
    UNION
    SELECT serial_number FROM central_devices WHERE deleted_at IS NULL AND serial_number <> ''
    UNION
    SELECT serial_number FROM central_classic_devices
    WHERE deleted_at IS NULL AND serial_number <> ''
) s
LEFT JOIN LATERAL (
    SELECT d.* FROM glp_devices_current d WHERE d.serial_number = s.serial_number
    ORDER BY d.changed_at DESC, d.workspace_id, d.id LIMIT 1
) g ON true
LEFT JOIN LATERAL (
    SELECT d.* FROM central_devices_current d WHERE d.serial_number = s.serial_number
    ORDER BY d.changed_at DESC, d.workspace_id, d.id LIMIT 1
) c ON true
LEFT JOIN LATERAL (
    SELECT d.* FROM central_classic_devices_current d WHERE d.serial_number = s.serial_number
    ORDER BY d.changed_at DESC, d.account_id, d.id LIMIT 1
) k ON true
LEFT JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_object(
               'id', sub.id, 'key', sub.key, 'tier', sub.tier, 'sku', sub.sku,
               'status', sub.subscription_status, 'type', sub.subscription_type,
               'endTime', sub.end_time, 'deletedAt', sub.deleted_at) ORDER BY sub.id)
               AS subscriptions,
           array_agg(sub.key ORDER BY sub.id) FILTER (WHERE sub.key IS NOT NULL) AS keys
    FROM glp_device_subscriptions l
    JOIN glp_subscriptions sub ON sub.workspace_id = l.workspace_id AND sub.id = l.subscription_id
    WHERE l.workspace_id = g.workspace_id AND l.device_id = g.id
) subs ON true
LEFT JOIN LATERAL (
    -- Links to subscriptions the subscriptions list does not contain (docs/sync-engine.md).
    SELECT array_agg(u.subscription_id ORDER BY u.subscription_id) AS ids
    FROM glp_unresolved_subscription_links u
    WHERE u.workspace_id = g.workspace_id AND u.device_id = g.id
) pending ON true;
