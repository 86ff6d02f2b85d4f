-- Device↔subscription links are derived data: the statement that writes a device writes its
-- links from the device's own `subscription` field (store/statements.py), only for devices it
-- has just written and subscriptions it finds in the same statement; the operator never
-- hard-deletes a device or a subscription. The foreign keys re-checked that for every link
-- written: an index probe and a row lock on each side. For a page of 2,000 new devices the
-- 2 x 1,568 checks took 32 of 180 ms (EXPLAIN ANALYZE); without them, the statement's median
-- over interleaved pages fell from 204 to 163 ms.
ALTER TABLE glp_device_subscriptions
    DROP CONSTRAINT glp_device_subscriptions_workspace_id_device_id_fkey,
    DROP CONSTRAINT glp_device_subscriptions_workspace_id_subscription_id_fkey;
ALTER TABLE glp_unresolved_subscription_links
    DROP CONSTRAINT glp_unresolved_subscription_links_workspace_id_device_id_fkey;

-- What the keys also did stays: a DELETE of a device or subscription that a link names is
-- refused (SQLSTATE 23503, as the keys refused it), checked once per statement from its
-- deleted rows, so it costs the merge nothing. What is no longer checked: a hard delete racing
-- a merge that links the same row, and an UPDATE of a linked row's id. The operator does
-- neither (its upserts never change an id), so only a hand-made change could orphan a link.
CREATE FUNCTION inventory_refuse_deleting_linked_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    linked text;
BEGIN
    IF TG_TABLE_NAME = 'glp_devices' THEN
        SELECT g.id INTO linked FROM gone g
        WHERE EXISTS (SELECT 1 FROM glp_device_subscriptions l
                      WHERE l.workspace_id = g.workspace_id AND l.device_id = g.id)
           OR EXISTS (SELECT 1 FROM glp_unresolved_subscription_links u
                      WHERE u.workspace_id = g.workspace_id AND u.device_id = g.id)
        LIMIT 1;
    ELSE
        SELECT g.id INTO linked FROM gone g
        WHERE EXISTS (SELECT 1 FROM glp_device_subscriptions l
                      WHERE l.workspace_id = g.workspace_id AND l.subscription_id = g.id)
        LIMIT 1;
    END IF;
    IF linked IS NOT NULL THEN
        RAISE EXCEPTION 'cannot delete % row %: device-subscription links name it', TG_TABLE_NAME, linked
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'delete its links (glp_device_subscriptions, glp_unresolved_subscription_links) first';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER glp_devices_refuse_deleting_linked
    AFTER DELETE ON glp_devices REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION inventory_refuse_deleting_linked_rows();
CREATE TRIGGER glp_subscriptions_refuse_deleting_linked
    AFTER DELETE ON glp_subscriptions REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION inventory_refuse_deleting_linked_rows();
