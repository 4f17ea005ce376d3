DROP TABLE public.audit_log;
DROP TABLE public.license_activations;
DROP TABLE public.sessions;
