DROP TYPE public.project_status;
DROP TYPE public.license_status;
DROP TYPE public.license_tier;
DROP TYPE public.user_status;
DROP TYPE public.user_role;
DROP TYPE public.organization_status;
DROP SCHEMA pretenant;
DROP SCHEMA app;
