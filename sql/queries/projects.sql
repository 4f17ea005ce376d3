-- Projects of the caller's organization.

-- name: list_projects_first
select id, organization_id, name, description, status, created_by, metadata, created_at,
       updated_at
  from projects
 where organization_id = :organization_id
   and deleted_at is null
 order by created_at desc, id desc
 limit :limit

-- name: list_projects_after
select id, organization_id, name, description, status, created_by, metadata, created_at,
       updated_at
  from projects
 where organization_id = :organization_id
   and deleted_at is null
   and (created_at, id) < (:after_created_at, :after_id)
 order by created_at desc, id desc
 limit :limit

-- name: get_project
select id, organization_id, name, description, status, created_by, metadata, created_at,
       updated_at
  from projects
 where organization_id = :organization_id
   and id = :project_id
   and deleted_at is null

-- name: find_project
-- Existence and creator of a project, before deciding whether the caller may change it.
select id, created_by
  from projects
 where organization_id = :organization_id
   and id = :project_id
   and deleted_at is null

-- name: create_project
insert into projects (organization_id, name, description, status, created_by, metadata)
values (:organization_id, :name, :description,
        coalesce(:status::project_status, 'ACTIVE'), :created_by, :metadata)
returning id, organization_id, name, description, status, created_by, metadata, created_at,
          updated_at

-- name: update_project
-- Omitted fields keep their value; description is set (possibly to null) only when sent.
update projects
   set name = coalesce(:name, name),
       description = case when :set_description then :description else description end,
       status = coalesce(:status::project_status, status),
       metadata = coalesce(:metadata, metadata)
 where organization_id = :organization_id
   and id = :project_id
   and deleted_at is null
returning id, organization_id, name, description, status, created_by, metadata, created_at,
          updated_at

-- name: delete_project
update projects
   set deleted_at = now()
 where organization_id = :organization_id
   and id = :project_id
   and deleted_at is null
