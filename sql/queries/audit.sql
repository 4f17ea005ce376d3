-- The audit log: appended in the same transaction as the change it records, and read by
-- ADMIN+ (listAuditEvents; the audit_log_select policy enforces both tenant and role).

-- name: record_audit
insert into audit_log (organization_id, actor_id, action, target_type, target_id, detail,
                       request_id, client_ip)
values (:organization_id, :actor_id, :action, :target_type, :target_id, :detail, :request_id,
        :client_ip)

-- name: list_audit_events_first
-- Each filter applies only when given; the keyset index (organization_id, created_at DESC,
-- id DESC) serves the order, audit_log_org_action_idx / _actor_idx / _target_idx a filter.
select g.id, g.organization_id, g.created_at, g.action, g.actor_id,
       u.email as actor_email, g.target_type, g.target_id, g.detail,
       host(g.client_ip) as client_ip, g.request_id
  from audit_log as g
  left join users as u on u.organization_id = g.organization_id and u.id = g.actor_id
 where g.organization_id = :organization_id
   and (cast(:action as text) is null or g.action = :action)
   and (cast(:actor_id as uuid) is null or g.actor_id = :actor_id)
   and (cast(:target_type as text) is null or g.target_type = :target_type)
   and (cast(:target_id as uuid) is null or g.target_id = :target_id)
   and (cast(:since as timestamptz) is null or g.created_at >= :since)
   and (cast(:until as timestamptz) is null or g.created_at < :until)
 order by g.created_at desc, g.id desc
 limit :limit

-- name: list_audit_events_after
select g.id, g.organization_id, g.created_at, g.action, g.actor_id,
       u.email as actor_email, g.target_type, g.target_id, g.detail,
       host(g.client_ip) as client_ip, g.request_id
  from audit_log as g
  left join users as u on u.organization_id = g.organization_id and u.id = g.actor_id
 where g.organization_id = :organization_id
   and (cast(:action as text) is null or g.action = :action)
   and (cast(:actor_id as uuid) is null or g.actor_id = :actor_id)
   and (cast(:target_type as text) is null or g.target_type = :target_type)
   and (cast(:target_id as uuid) is null or g.target_id = :target_id)
   and (cast(:since as timestamptz) is null or g.created_at >= :since)
   and (cast(:until as timestamptz) is null or g.created_at < :until)
   and (g.created_at, g.id) < (:after_created_at, :after_id)
 order by g.created_at desc, g.id desc
 limit :limit
