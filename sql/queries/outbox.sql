-- The mail worker's queue: claim due messages, then record each one's outcome.

-- name: claim_outbox
select id, lease_id, kind, recipient, subject, body, attempts
  from pretenant.claim_outbox(:limit, make_interval(secs => :lease_seconds))

-- name: complete_outbox
select pretenant.complete_outbox(:id, :lease_id) as recorded

-- name: retry_outbox
select pretenant.retry_outbox(:id, :lease_id, :error, make_interval(secs => :delay_seconds),
                              :max_attempts) as recorded
