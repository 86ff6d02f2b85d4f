-- Fabric inventory for consumers: why a row was retired, which Fabrics exist, and typed views
-- of the relations Hedgehog keeps in JSON (docs/fabrics.md has example queries).

-- Why a row stopped being live: 'deleted' (gone from a complete listing), 'kind-dropped' (no
-- longer in the Fabric's spec.kinds), 'crd-removed' (the fabric serves the kind no more),
-- 'fabric-deleted' (the Fabric resource is gone). NULL while the row is live.
ALTER TABLE fabric_objects ADD COLUMN deleted_reason text;
UPDATE fabric_objects SET deleted_reason = 'deleted' WHERE deleted_at IS NOT NULL;
-- The typed views join live objects by fabric, kind and name.
CREATE INDEX fabric_objects_live ON fabric_objects (fabric_uid, kind, namespace, name)
    WHERE deleted_at IS NULL;

-- One row per Fabric resource an operator has run. `owner` is the operator's cluster (the uid
-- of its fabrics.inventorysync.dev CRD): an operator retires only the Fabrics it owns, so two
-- clusters sharing a database never retire each other's rows.
CREATE TABLE fabrics (
    fabric_uid     text        PRIMARY KEY,
    owner          text        NOT NULL,
    namespace      text        NOT NULL,
    name           text        NOT NULL,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    deleted_at     timestamptz,
    deleted_reason text
);
CREATE INDEX fabrics_owner ON fabrics (owner, namespace) WHERE deleted_at IS NULL;

CREATE OR REPLACE FUNCTION inventory_try_inet(value text) RETURNS inet
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN value::inet;
EXCEPTION WHEN others THEN
    RETURN NULL;  -- a malformed address must not fail a query; the jsonb keeps it
END $$;

CREATE OR REPLACE FUNCTION inventory_try_cidr(value text) RETURNS cidr
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN value::cidr;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION inventory_jsonb_bool(value jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(value) = 'boolean' THEN value::boolean END
$$;

CREATE OR REPLACE FUNCTION inventory_text_array(value jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(value) = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(value)) END
$$;

-- Switches with their wiring (Switch), model (SwitchProfile) and operational state (Agent
-- status); the Agent and SwitchProfile columns are NULL until those kinds are synced.
CREATE VIEW fabric_switches AS
SELECT s.fabric_uid, s.fabric_namespace, s.fabric_name, s.namespace, s.name,
       s.spec->>'role' AS role,
       coalesce(s.spec->>'profile', s.labels->>'fabric.githedgehog.com/profile') AS profile,
       s.spec->>'description' AS description,
       coalesce(inventory_text_array(s.spec->'groups'), '{}') AS groups,
       s.spec->'redundancy'->>'group' AS redundancy_group,
       s.spec->'redundancy'->>'type' AS redundancy_type,
       coalesce(inventory_text_array(s.spec->'vlanNamespaces'), '{}') AS vlan_namespaces,
       inventory_try_bigint(s.spec->>'asn') AS asn,
       inventory_try_inet(s.spec->>'ip') AS ip,
       inventory_try_inet(s.spec->>'vtepIP') AS vtep_ip,
       inventory_try_inet(s.spec->>'protocolIP') AS protocol_ip,
       s.spec->'boot'->>'serial' AS boot_serial,
       s.spec->'boot'->>'mac' AS boot_mac,
       p.spec->>'displayName' AS model,
       p.spec->>'platform' AS platform,
       p.spec->>'switchSilicon' AS switch_silicon,
       p.spec->>'nosType' AS nos_type,
       a.status->'state'->'nos'->>'serialNumber' AS serial_number,
       a.status->'state'->'nos'->>'mfgName' AS manufacturer,
       a.status->'state'->'nos'->>'platformName' AS nos_platform,
       a.status->'state'->'nos'->>'softwareVersion' AS software_version,
       a.status->>'version' AS agent_version,
       inventory_try_timestamptz(a.status->>'lastHeartbeat') AS last_heartbeat,
       inventory_try_timestamptz(a.status->>'lastAppliedTime') AS last_applied_at,
       inventory_try_bigint(a.status->>'lastAppliedGen') AS last_applied_generation,
       inventory_try_bigint(a.data->'metadata'->>'generation') AS agent_generation,
       inventory_jsonb_bool(a.status->'rebootRequired') AS reboot_required,
       a.id IS NOT NULL AS agent_synced,
       p.id IS NOT NULL AS profile_synced,
       s.labels
FROM fabric_objects s
LEFT JOIN fabric_objects a
       ON a.fabric_uid = s.fabric_uid AND a.kind = 'Agent' AND a.api_group = 'agent.githedgehog.com'
      AND a.namespace = s.namespace AND a.name = s.name AND a.deleted_at IS NULL
LEFT JOIN fabric_objects p
       ON p.fabric_uid = s.fabric_uid AND p.kind = 'SwitchProfile'
      AND p.api_group = 'wiring.githedgehog.com' AND p.namespace = s.namespace
      AND p.name = coalesce(s.spec->>'profile', s.labels->>'fabric.githedgehog.com/profile')
      AND p.deleted_at IS NULL
WHERE s.kind = 'Switch' AND s.api_group = 'wiring.githedgehog.com' AND s.deleted_at IS NULL;

CREATE VIEW fabric_servers AS
SELECT s.fabric_uid, s.fabric_namespace, s.fabric_name, s.namespace, s.name,
       s.spec->>'description' AS description,
       s.spec->>'profile' AS profile,
       s.labels
FROM fabric_objects s
WHERE s.kind = 'Server' AND s.api_group = 'wiring.githedgehog.com' AND s.deleted_at IS NULL;

-- One row per end of every link of every Connection, with the other end of the same link as
-- the peer. A port is `device/port` (leaf-01/E1/1 → device leaf-01, port E1/1). external and
-- staticExternal links have one end and no peer.
CREATE VIEW fabric_connection_ends AS
WITH connections AS (
    SELECT c.fabric_uid, c.fabric_namespace, c.fabric_name, c.namespace, c.name,
           t.key AS spec_type, t.value AS body
    FROM fabric_objects c
    CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(c.spec) = 'object'
                                       THEN c.spec ELSE '{}' END) t
    WHERE c.kind = 'Connection' AND c.api_group = 'wiring.githedgehog.com'
      AND c.deleted_at IS NULL AND jsonb_typeof(t.value) = 'object'
), links AS (
    SELECT cn.*, l.link_set, l.link_index, l.link
    FROM connections cn
    CROSS JOIN LATERAL (
        SELECT 'link' AS link_set, 0::bigint AS link_index, cn.body->'link' AS link
        WHERE jsonb_typeof(cn.body->'link') = 'object'
        UNION ALL
        SELECT sets.name, e.ordinality - 1, e.value
        FROM (VALUES ('links'), ('peerLinks'), ('sessionLinks')) AS sets(name)
        CROSS JOIN LATERAL jsonb_array_elements(
            CASE WHEN jsonb_typeof(cn.body->sets.name) = 'array'
                 THEN cn.body->sets.name ELSE '[]' END) WITH ORDINALITY AS e(value, ordinality)
        WHERE jsonb_typeof(e.value) = 'object'
    ) l
)
-- The peer is the other end of the same link object, found inside that object: no join
-- across all ends, so the cost stays linear in the number of links.
SELECT lk.fabric_uid, lk.fabric_namespace, lk.fabric_name, lk.namespace,
       lk.name AS connection,
       CASE lk.spec_type WHEN 'mclagDomain' THEN 'mclag-domain'
                         WHEN 'vpcLoopback' THEN 'vpc-loopback'
                         WHEN 'staticExternal' THEN 'static-external'
                         ELSE lk.spec_type END AS connection_type,
       lk.link_set, lk.link_index, a.key AS end_role,
       CASE a.key WHEN 'server' THEN 'server' WHEN 'gateway' THEN 'gateway'
                  ELSE 'switch' END AS device_type,
       split_part(a.value->>'port', '/', 1) AS device,
       CASE WHEN strpos(a.value->>'port', '/') > 0
            THEN substr(a.value->>'port', strpos(a.value->>'port', '/') + 1) END AS port,
       inventory_try_inet(a.value->>'ip') AS ip,
       b.key AS peer_role,
       split_part(b.value->>'port', '/', 1) AS peer_device,
       CASE WHEN strpos(b.value->>'port', '/') > 0
            THEN substr(b.value->>'port', strpos(b.value->>'port', '/') + 1) END AS peer_port,
       inventory_try_inet(b.value->>'ip') AS peer_ip
FROM links lk
CROSS JOIN LATERAL jsonb_each(lk.link) a
LEFT JOIN LATERAL (
    SELECT e.key, e.value FROM jsonb_each(lk.link) e
    WHERE e.key <> a.key AND jsonb_typeof(e.value) = 'object' AND e.value ? 'port'
    ORDER BY e.key LIMIT 1
) b ON true
WHERE jsonb_typeof(a.value) = 'object' AND a.value ? 'port';

CREATE VIEW fabric_vpcs AS
SELECT v.fabric_uid, v.fabric_namespace, v.fabric_name, v.namespace, v.name,
       v.spec->>'mode' AS mode,
       v.spec->>'ipv4Namespace' AS ipv4_namespace,
       v.spec->>'vlanNamespace' AS vlan_namespace,
       CASE WHEN jsonb_typeof(v.spec->'subnets') = 'object'
            THEN ARRAY(SELECT jsonb_object_keys(v.spec->'subnets') ORDER BY 1)
            ELSE '{}' END AS subnets,
       v.labels
FROM fabric_objects v
WHERE v.kind = 'VPC' AND v.api_group = 'vpc.githedgehog.com' AND v.deleted_at IS NULL;

-- One row per subnet of every VPC.
CREATE VIEW fabric_vpc_subnets AS
SELECT v.fabric_uid, v.fabric_namespace, v.fabric_name, v.namespace,
       v.name AS vpc, sn.key AS subnet,
       inventory_try_cidr(sn.value->>'subnet') AS cidr,
       inventory_try_inet(sn.value->>'gateway') AS gateway,
       inventory_try_bigint(sn.value->>'vlan') AS vlan,
       coalesce(inventory_jsonb_bool(sn.value->'dhcp'->'enable'), false) AS dhcp_enabled,
       inventory_try_inet(sn.value->'dhcp'->'range'->>'start') AS dhcp_start,
       inventory_try_inet(sn.value->'dhcp'->'range'->>'end') AS dhcp_end,
       coalesce(inventory_jsonb_bool(sn.value->'isolated'), false) AS isolated,
       coalesce(inventory_jsonb_bool(sn.value->'restricted'), false) AS restricted,
       coalesce(inventory_jsonb_bool(sn.value->'hostBGP'), false) AS host_bgp
FROM fabric_objects v
CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(v.spec->'subnets') = 'object'
                                   THEN v.spec->'subnets' ELSE '{}' END) sn
WHERE v.kind = 'VPC' AND v.api_group = 'vpc.githedgehog.com' AND v.deleted_at IS NULL
  AND jsonb_typeof(sn.value) = 'object';

-- VPC attachments with the subnet they attach (spec.subnet is `vpc/subnet`) and the
-- connection's type; cidr/vlan/connection_type are NULL when that VPC or connection is absent.
CREATE VIEW fabric_vpc_attachments AS
SELECT t.fabric_uid, t.fabric_namespace, t.fabric_name, t.namespace, t.name,
       split_part(t.spec->>'subnet', '/', 1) AS vpc,
       nullif(split_part(t.spec->>'subnet', '/', 2), '') AS subnet,
       t.spec->>'connection' AS connection,
       coalesce(inventory_jsonb_bool(t.spec->'nativeVLAN'), false) AS native_vlan,
       inventory_try_cidr(v.subnet->>'subnet') AS cidr,
       inventory_try_bigint(v.subnet->>'vlan') AS vlan,
       CASE c.spec_type WHEN 'mclagDomain' THEN 'mclag-domain' WHEN 'vpcLoopback' THEN 'vpc-loopback'
                        WHEN 'staticExternal' THEN 'static-external'
                        ELSE c.spec_type END AS connection_type
FROM fabric_objects t
-- LATERAL lookups by (fabric, kind, namespace, name): one index probe per attachment.
LEFT JOIN LATERAL (
    SELECT o.spec->'subnets'->split_part(t.spec->>'subnet', '/', 2) AS subnet
    FROM fabric_objects o
    WHERE o.fabric_uid = t.fabric_uid AND o.kind = 'VPC' AND o.namespace = t.namespace
      AND o.name = split_part(t.spec->>'subnet', '/', 1) AND o.deleted_at IS NULL
      AND o.api_group = 'vpc.githedgehog.com'
    LIMIT 1
) v ON true
LEFT JOIN LATERAL (
    SELECT (SELECT min(k) FROM jsonb_object_keys(o.spec) k) AS spec_type
    FROM fabric_objects o
    WHERE o.fabric_uid = t.fabric_uid AND o.kind = 'Connection' AND o.namespace = t.namespace
      AND o.name = t.spec->>'connection' AND o.deleted_at IS NULL
      AND o.api_group = 'wiring.githedgehog.com' AND jsonb_typeof(o.spec) = 'object'
    LIMIT 1
) c ON true
WHERE t.kind = 'VPCAttachment' AND t.api_group = 'vpc.githedgehog.com' AND t.deleted_at IS NULL;

-- Agent health per switch of fabrics whose Agents are synced: the last heartbeat, its age
-- now, and when the Agents were last listed (how fresh this knowledge is).
CREATE VIEW fabric_switch_health AS
SELECT s.fabric_uid, s.fabric_namespace, s.fabric_name, s.namespace, s.name, s.role,
       s.agent_synced, s.last_heartbeat,
       now() - s.last_heartbeat AS heartbeat_age,
       s.agent_version, s.software_version,
       s.last_applied_generation, s.agent_generation,
       s.last_applied_generation IS NOT DISTINCT FROM s.agent_generation AS config_applied,
       s.reboot_required,
       scope.last_complete_at AS agents_listed_at
FROM fabric_switches s
JOIN sync_scopes scope
  ON scope.source_kind = 'fabric'
 AND scope.workspace_id = s.fabric_uid || '/agent.githedgehog.com/Agent';

-- Switches whose agent has not reported for longer than `older_than` (or never did).
CREATE FUNCTION fabric_stale_switches(older_than interval)
RETURNS SETOF fabric_switch_health
LANGUAGE sql STABLE AS $$
    SELECT * FROM fabric_switch_health
    WHERE last_heartbeat IS NULL OR last_heartbeat < now() - older_than
    ORDER BY fabric_name, namespace, name
$$;
