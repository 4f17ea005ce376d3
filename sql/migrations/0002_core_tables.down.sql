DROP TABLE public.projects;
DROP TABLE public.licenses;
ALTER TABLE public.organizations DROP CONSTRAINT organizations_owner_fkey;
DROP TABLE public.users;
DROP TABLE public.organizations;
