-- requires: payments, invoices, collections_payment_intake, collections_suspense_resolutions, collections_list, collections_dunning_state, collections_allocations
-- Collections area analyst views (docs/collections.md). Amounts are DECIMAL(18,2) in the account currency.

-- Payments still held in suspense (not re-matched since), with the reason and the file line they came from.
CREATE OR REPLACE VIEW payment_suspense AS
SELECT i.source_file, i.record_offset, i.kind, i.payment_id, i.source_payment_id, i.received_date, i.amount,
       i.currency, i.payment_reference, i.payer_name, i.remittance_info, i.reason_code, i.message
FROM collections_payment_intake i
WHERE i.outcome = 'suspense'
  AND i.payment_id NOT IN (SELECT payment_id FROM collections_suspense_resolutions
                           WHERE outcome IN ('matched', 'top_up'));

-- Outcome counts and amounts per imported file (conservation: lines = matched + top_up + duplicate + suspense).
CREATE OR REPLACE VIEW payment_intake_summary AS
SELECT source_file, file_sha256, kind, outcome, count(*) AS lines, sum(amount) AS amount
FROM collections_payment_intake
GROUP BY ALL;

-- The morning list of the latest daily run, highest priority first.
CREATE OR REPLACE VIEW collections_latest_list AS
SELECT c.* FROM collections_list c
JOIN (SELECT max(as_of) AS as_of FROM collections_dunning_state) l ON c.as_of = l.as_of
ORDER BY c.priority;

-- One row per daily run: accounts on each step and the overdue amount behind them.
CREATE OR REPLACE VIEW collections_daily_kpis AS
SELECT as_of, step, step_code, count(*) AS accounts, sum(overdue) AS overdue,
       count(*) FILTER (WHERE excluded_reason IS NOT NULL) AS excluded_accounts
FROM collections_dunning_state
GROUP BY ALL
ORDER BY as_of, step;

-- Invoiced versus collected per invoice as of the latest run (for revenue assurance).
-- collections_allocations holds one snapshot: the allocations as of the latest daily run.
CREATE OR REPLACE VIEW invoice_collection_status AS
WITH latest AS (SELECT as_of FROM collections_dunning_state ORDER BY as_of DESC LIMIT 1),
paid AS (
    SELECT invoice_id, sum(amount) AS collected
    FROM collections_allocations
    WHERE invoice_id IS NOT NULL
    GROUP BY invoice_id
),
state AS (
    SELECT s.account_id, s.step_code, s.excluded_reason
    FROM collections_dunning_state s JOIN latest l ON s.as_of = l.as_of
)
SELECT i.invoice_id, i.invoice_number, i.account_id, i.period, i.due_date, i.total,
       coalesce(p.collected, 0)::DECIMAL(18,2) AS collected,
       (i.total - coalesce(p.collected, 0))::DECIMAL(18,2) AS open_amount,
       st.step_code AS dunning_step, st.excluded_reason,
       (SELECT max(as_of) FROM collections_allocations) AS as_of
FROM invoices i
LEFT JOIN paid p ON p.invoice_id = i.invoice_id
LEFT JOIN state st ON st.account_id = i.account_id
WHERE i.status = 'finalised' AND i.kind = 'invoice';
