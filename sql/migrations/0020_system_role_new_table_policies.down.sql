-- Back to 0019: coditect_system loses the policies 0020 gave it.

DROP POLICY audit_log_system_select_machine_churn ON public.audit_log;

DROP POLICY outbox_system_update ON public.outbox;
DROP POLICY outbox_system_insert ON public.outbox;
DROP POLICY outbox_system_select ON public.outbox;

DROP POLICY account_tokens_system_update ON public.account_tokens;
DROP POLICY account_tokens_system_insert ON public.account_tokens;
DROP POLICY account_tokens_system_select ON public.account_tokens;

DROP POLICY spent_refresh_tokens_system_insert ON public.spent_refresh_tokens;
DROP POLICY spent_refresh_tokens_system_select ON public.spent_refresh_tokens;
