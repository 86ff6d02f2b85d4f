-- Classic Aruba Central device inventory, scoped by account (the customer id). Its items carry
-- no id: the serial number is the row id. Open-ended values (device_type, tier_type) are text.

CREATE TABLE central_classic_devices (
    account_id    text        NOT NULL,
    id            text        NOT NULL,  -- the serial, as upstream items have no id
    serial_number text,                  -- the same serial, named as in the other tables
    mac_address   text,
    model         text,
    part_number   text,                  -- aruba_part_no
    device_type   text,                  -- iap, switch, gateway, …
    customer_id   text,
    customer_name text,
    imei          text,                  -- NULL where upstream sends ""
    tier_type     text,
    services      jsonb,
    data          jsonb       NOT NULL,
    first_seen    timestamptz NOT NULL,
    changed_at    timestamptz NOT NULL,
    deleted_at    timestamptz,
    PRIMARY KEY (account_id, id)
);
-- Joins to glp_devices.serial_number and central_devices.serial_number across accounts.
CREATE INDEX central_classic_devices_serial ON central_classic_devices (serial_number);

-- Live rows with their "last seen" time: the account's last complete fetch
-- (sync_scopes.workspace_id holds the scope value, here the account id).
CREATE VIEW central_classic_devices_current AS
    SELECT c.*, s.last_complete_at AS last_seen
    FROM central_classic_devices c
    LEFT JOIN sync_scopes s
        ON s.source_kind = 'arubaCentralClassic' AND s.workspace_id = c.account_id
    WHERE c.deleted_at IS NULL;
