-- coditect_system's policies for the tables and uses that came after 0019 was written (the
-- account tables, and the machines' churn counts), the way 0019 gives them for the others: TO coditect_system, testing current_user, one per table and command its
-- pre-tenant functions use, and no other:
--
--   rotate_refresh            SELECT, INSERT spent_refresh_tokens
--   request_password_reset    SELECT, INSERT account_tokens; INSERT outbox
--   reset_password,
--   accept_invitation         SELECT, UPDATE account_tokens
--   claim_outbox, complete_outbox, retry_outbox
--                             SELECT, UPDATE outbox
--   validate_license, deactivate_machine
--                             SELECT audit_log: only the machine activations and
--                             deactivations they count for the churn limits

CREATE POLICY spent_refresh_tokens_system_select ON public.spent_refresh_tokens FOR SELECT
    TO coditect_system USING (current_user = 'coditect_system');
CREATE POLICY spent_refresh_tokens_system_insert ON public.spent_refresh_tokens FOR INSERT
    TO coditect_system WITH CHECK (current_user = 'coditect_system');

CREATE POLICY account_tokens_system_select ON public.account_tokens FOR SELECT
    TO coditect_system USING (current_user = 'coditect_system');
CREATE POLICY account_tokens_system_insert ON public.account_tokens FOR INSERT
    TO coditect_system WITH CHECK (current_user = 'coditect_system');
CREATE POLICY account_tokens_system_update ON public.account_tokens FOR UPDATE
    TO coditect_system USING (current_user = 'coditect_system')
    WITH CHECK (current_user = 'coditect_system');

CREATE POLICY outbox_system_select ON public.outbox FOR SELECT
    TO coditect_system USING (current_user = 'coditect_system');
CREATE POLICY outbox_system_insert ON public.outbox FOR INSERT
    TO coditect_system WITH CHECK (current_user = 'coditect_system');
CREATE POLICY outbox_system_update ON public.outbox FOR UPDATE
    TO coditect_system USING (current_user = 'coditect_system')
    WITH CHECK (current_user = 'coditect_system');

CREATE POLICY audit_log_system_select_machine_churn ON public.audit_log FOR SELECT
    TO coditect_system
    USING (current_user = 'coditect_system'
           AND target_type = 'license'
           AND action IN ('license.machine_activated', 'license.machine_deactivated'));
