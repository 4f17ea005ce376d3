-- The audit log: appended in the same transaction as the change it records.

-- name: record_audit
insert into audit_log (organization_id, actor_id, action, target_type, target_id, detail, request_id)
values (:organization_id, :actor_id, :action, :target_type, :target_id, :detail, :request_id)
