DROP INDEX public.licenses_created_idx;
DROP INDEX public.organizations_created_idx;
DROP SCHEMA operator CASCADE;
