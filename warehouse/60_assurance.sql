-- requires: usage, file_manifest, rated, rating_suspense, invoices, invoice_lines, customers_subscriptions, customers_accounts, collections_allocations, collections_dunning_state
-- Revenue-assurance controls and KPIs (docs/assurance.md). Every control is a view of findings: one row
-- per problem record (file, usage record, subscription, invoice) with the period it belongs to, an
-- estimated value in EUR and, where it applies, its age in days at the close of its period. The
-- assurance run (`telbill assurance run --period P`) reads these views for one period, applies each
-- control's pass/fail threshold and publishes the results to the lake (assurance/...).
-- Staging views (ra_stg_*) are the only place that knows other areas' column names: when a dataset
-- changes shape, fix the staging view, not the controls. Periods are calendar months in Europe/Berlin
-- (usage) or the billing period label (rated, invoices).

SET TimeZone = 'UTC';
SET enable_progress_bar = false;

-- Exact division: DuckDB 1.5 gives DOUBLE for DECIMAL / DECIMAL and INTEGER / INTEGER, so money and
-- percentages never use '/'. Amounts become integer nano-units (HUGEINT), are divided with '//' and come
-- back as DECIMAL(38,9). Rounding rule: half-up (half away from zero) at the 9th decimal, once, at the end.
CREATE OR REPLACE MACRO ra_nanos(x) AS CAST(CAST(x AS DECIMAL(38,9)) * CAST(1000000000 AS DECIMAL(10,0)) AS HUGEINT);
CREATE OR REPLACE MACRO ra_div_half_up(n, d) AS CASE WHEN d IS NULL OR d = 0 THEN NULL
    ELSE sign(CAST(n AS HUGEINT)) * sign(CAST(d AS HUGEINT))
         * ((2 * abs(CAST(n AS HUGEINT)) + abs(CAST(d AS HUGEINT))) // (2 * abs(CAST(d AS HUGEINT)))) END;
CREATE OR REPLACE MACRO ra_amount(n) AS CAST(CAST(n AS DECIMAL(38,0)) * CAST(0.000000001 AS DECIMAL(10,9)) AS DECIMAL(38,9));
-- 100 * n / d as DECIMAL(38,9) for amounts or counts n, d (half-up at 9 decimals; NULL when d is 0)
CREATE OR REPLACE MACRO ra_pct(n, d) AS ra_amount(ra_div_half_up(ra_nanos(n) * 100000000000, ra_nanos(d)));

-- Plan fees used to value a subscription that was never billed (loaded from tariffs/plans.csv by the
-- assurance run; empty in a warehouse built without it).
CREATE TABLE IF NOT EXISTS ra_plan_fees (plan_id VARCHAR, monthly_fee DECIMAL(38,9));
-- What the prepaid charging service debited per record, read from its landing files by the assurance run.
CREATE TABLE IF NOT EXISTS ra_charging_records (source VARCHAR, source_file VARCHAR, network_record_id VARCHAR,
                                                charged_amount DECIMAL(38,9));

-- ---------------------------------------------------------------------------------------- staging
-- Where each bill period starts, per account (its cycle day 00:00 in its zone, as pipelines/common/periods.py),
-- plus the pseudo-account '' for the calendar month in Europe/Berlin. Usage finds its period with an ASOF join
-- instead of converting every record's time zone.
CREATE OR REPLACE VIEW ra_stg_period_starts AS
WITH span AS (
    SELECT CAST(date_trunc('month', min(start_time)) AS TIMESTAMP) - INTERVAL 1 MONTH AS lo,
           CAST(date_trunc('month', max(start_time)) AS TIMESTAMP) + INTERVAL 1 MONTH AS hi FROM usage
), months AS (
    SELECT m FROM span, generate_series(span.lo, span.hi, INTERVAL 1 MONTH) g(m)
), accts AS (
    SELECT account_id, any_value(coalesce(bill_cycle_day, 1)) AS cycle_day,
           any_value(coalesce(timezone, 'Europe/Berlin')) AS tz
    FROM customers_accounts WHERE account_id IS NOT NULL GROUP BY account_id
    UNION ALL SELECT '', 1, 'Europe/Berlin'
)
SELECT a.account_id, strftime(m, '%Y-%m') AS period,
       make_timestamptz(year(m), month(m), a.cycle_day, 0, 0, 0.0, a.tz) AS p_start
FROM accts a, months;

-- Usage with its calendar month (Europe/Berlin) and its bill period (before the account's cycle day the
-- usage belongs to the previous period; usage of an unknown account uses the calendar month).
CREATE OR REPLACE VIEW ra_stg_usage AS
SELECT u.* EXCLUDE (acct_key), c.period AS ra_period, coalesce(b.period, c.period) AS bill_period
FROM (
    SELECT * REPLACE (CAST(charged_amount AS DECIMAL(38,9)) AS charged_amount), coalesce(account_id, '') AS acct_key
    FROM (SELECT NULL::DECIMAL(38,9) AS charged_amount, NULL::VARCHAR AS source, NULL::VARCHAR AS record_id,
                 NULL::VARCHAR AS account_id WHERE false
          UNION ALL BY NAME SELECT * FROM usage)
) u
ASOF LEFT JOIN ra_stg_period_starts b ON u.acct_key = b.account_id AND u.start_time >= b.p_start
ASOF LEFT JOIN (SELECT period, p_start FROM ra_stg_period_starts WHERE account_id = '') c ON u.start_time >= c.p_start;

-- mediation's file manifest (pipelines/mediation/pipeline.py MANIFEST_SCHEMA): one row per landed file
CREATE OR REPLACE VIEW ra_stg_file_manifest AS
SELECT source, source_file, file_sha256, CAST("sequence" AS BIGINT) AS sequence_no, CAST(file_date AS DATE) AS file_date,
       coalesce(status, 'processed') AS status,
       coalesce(records_in, 0)::BIGINT AS records_in, coalesce("usage", 0)::BIGINT AS records_usage,
       coalesce(filtered, 0)::BIGINT AS records_filtered, coalesce(rejected, 0)::BIGINT AS records_rejected,
       coalesce(duplicate, 0)::BIGINT AS records_duplicate, coalesce(suspense, 0)::BIGINT AS records_suspense,
       reason_code, strftime(CAST(file_date AS DATE), '%Y-%m') AS ra_period
FROM file_manifest;

CREATE OR REPLACE VIEW ra_stg_rating_suspense AS
SELECT DISTINCT ON (record_id) record_id, reason_code, message
FROM (SELECT NULL::VARCHAR AS record_id, NULL::VARCHAR AS reason_code, NULL::VARCHAR AS message WHERE false
      UNION ALL BY NAME SELECT * FROM rating_suspense)
ORDER BY record_id, reason_code;

CREATE OR REPLACE VIEW ra_stg_invoices AS
SELECT * FROM invoices WHERE status <> 'voided';

CREATE OR REPLACE VIEW ra_stg_invoice_lines AS
SELECT l.* FROM invoice_lines l JOIN ra_stg_invoices i USING (invoice_id);

-- Payment allocations: collections publishes a snapshot per as_of date; use the latest one only.
CREATE OR REPLACE VIEW ra_stg_allocations AS
SELECT DISTINCT account_id, payment_id, invoice_id, allocation_date, amount, allocation_type
FROM (SELECT NULL::VARCHAR AS as_of WHERE false UNION ALL BY NAME SELECT * FROM collections_allocations)
QUALIFY CAST(as_of AS VARCHAR) IS NOT DISTINCT FROM max(CAST(as_of AS VARCHAR)) OVER ();

-- Dunning state of each account on the latest run: what is overdue, in dispute or written off.
CREATE OR REPLACE VIEW ra_stg_dunning AS
SELECT account_id, step_code, overdue, excluded_reason
FROM (SELECT NULL::VARCHAR AS account_id, NULL::DATE AS as_of WHERE false
      UNION ALL BY NAME SELECT * FROM collections_dunning_state)
QUALIFY as_of IS NOT DISTINCT FROM max(as_of) OVER ();

-- Average price per base unit by period and service: values unrated/suspended usage (an estimate).
-- A record's value is quantity * charge_total / quantity_total, divided once in nano-units (half-up at
-- 9 decimals, see ra_div_half_up); price_per_unit is the same ratio for one unit, for people to read.
CREATE OR REPLACE VIEW ra_unit_price AS
SELECT bill_period AS period, service, CAST(sum(charge) AS DECIMAL(38,9)) AS charge_total,
       CAST(sum(quantity) AS HUGEINT) AS quantity_total,
       ra_amount(ra_div_half_up(ra_nanos(sum(charge)), sum(quantity))) AS price_per_unit
FROM rated GROUP BY ALL;
CREATE OR REPLACE MACRO ra_usage_value(quantity, charge_total, quantity_total) AS
    coalesce(ra_amount(ra_div_half_up(ra_nanos(charge_total) * CAST(quantity AS HUGEINT), quantity_total)),
             CAST(0 AS DECIMAL(38,9)));

-- ------------------------------------------------------------- C01 network -> mediation: file gaps
CREATE OR REPLACE VIEW ra_c01_sequence_gaps AS
WITH files AS (
    SELECT source, sequence_no, min(file_date) AS file_date, min(source_file) AS source_file
    FROM ra_stg_file_manifest WHERE sequence_no IS NOT NULL GROUP BY ALL
), nexts AS (
    SELECT *, lead(sequence_no) OVER (PARTITION BY source ORDER BY sequence_no) AS next_seq FROM files
)
SELECT 'C01' AS control_id, strftime(file_date, '%Y-%m') AS period, 'missing_file' AS finding_type, source,
       source_file AS source_file, NULL::VARCHAR AS record_id, NULL::VARCHAR AS account_id,
       NULL::VARCHAR AS subscription_id, NULL::VARCHAR AS service, NULL::DECIMAL(38,9) AS value_eur,
       NULL::INTEGER AS age_days,
       'sequence ' || missing_seq || ' never arrived (after ' || source_file || ')' AS detail
FROM (SELECT *, unnest(range(sequence_no + 1, next_seq)) AS missing_seq FROM nexts WHERE next_seq > sequence_no + 1);

-- ------------------------------------------------- C02 network -> mediation: file delivered twice
CREATE OR REPLACE VIEW ra_c02_duplicate_files AS
SELECT 'C02' AS control_id, ra_period AS period, 'duplicate_file' AS finding_type, source, source_file,
       NULL::VARCHAR AS record_id, NULL::VARCHAR AS account_id, NULL::VARCHAR AS subscription_id,
       NULL::VARCHAR AS service, NULL::DECIMAL(38,9) AS value_eur, NULL::INTEGER AS age_days,
       'same content as ' || first_file || ' (' || records_in || ' records, all held back as duplicates)' AS detail
FROM (
    SELECT *, first_value(source_file) OVER w AS first_file, row_number() OVER w AS copy_no
    FROM ra_stg_file_manifest WINDOW w AS (PARTITION BY file_sha256 ORDER BY source_file)
) WHERE copy_no > 1 OR status = 'duplicate_file'
UNION ALL
SELECT 'C02', ra_period, 'repeated_sequence', source, source_file, NULL, NULL, NULL, NULL, NULL, NULL,
       'sequence ' || sequence_no || ' already used by ' || first_file || ' (different content)'
FROM (
    SELECT *, first_value(source_file) OVER w AS first_file, first_value(file_sha256) OVER w AS first_sha,
           row_number() OVER w AS copy_no
    FROM ra_stg_file_manifest WHERE sequence_no IS NOT NULL
    WINDOW w AS (PARTITION BY source, sequence_no ORDER BY source_file)
) WHERE copy_no > 1 AND file_sha256 <> first_sha AND status <> 'duplicate_file';

-- ------------------------------------------------- C03 network -> mediation: sources that went quiet
-- Days are UTC usage dates (the lake partition; switches cut daily files on them) of the calendar month.
-- A day with no usage at all from a source whose median day in the period has >= 10 records (by chance
-- alone an empty day at that volume has probability e^-10, about 0.005 %).
CREATE OR REPLACE VIEW ra_c03_quiet_sources AS
WITH daily AS (
    SELECT source, strftime(usage_date, '%Y-%m') AS ra_period, usage_date AS day, count(*) AS records
    FROM ra_stg_usage GROUP BY ALL
), active AS (
    SELECT source, ra_period, median(records) AS median_day, min(day) AS first_day
    FROM daily GROUP BY ALL HAVING median(records) >= 10
), calendar AS (
    -- from the source's first day in the month to the month end or the last day any source delivered
    SELECT a.source, a.ra_period, a.median_day, CAST(d AS DATE) AS day
    FROM active a, generate_series(CAST(a.first_day AS TIMESTAMP),
                                   least(strptime(a.ra_period || '-01', '%Y-%m-%d') + INTERVAL 1 MONTH - INTERVAL 1 DAY,
                                         CAST((SELECT max(day) FROM daily) AS TIMESTAMP)),
                                   INTERVAL 1 DAY) g(d)
)
SELECT 'C03' AS control_id, c.ra_period AS period, 'quiet_source_day' AS finding_type, c.source,
       NULL::VARCHAR AS source_file, NULL::VARCHAR AS record_id, NULL::VARCHAR AS account_id,
       NULL::VARCHAR AS subscription_id, NULL::VARCHAR AS service, NULL::DECIMAL(38,9) AS value_eur,
       NULL::INTEGER AS age_days,
       'no records on ' || c.day || ' (median day: ' || c.median_day || ')' AS detail
FROM calendar c LEFT JOIN daily d USING (source, ra_period, day)
WHERE d.records IS NULL;

-- ------------- C04 mediation in = out per file (and rows really published); unreadable (quarantined) files
CREATE OR REPLACE VIEW ra_c04_mediation_balance AS
WITH published AS (SELECT source_file, count(*) AS usage_rows FROM ra_stg_usage GROUP BY ALL)
SELECT 'C04' AS control_id, m.ra_period AS period,
       CASE WHEN m.status = 'quarantined' THEN 'quarantined_file'
            WHEN m.records_in <> m.records_usage + m.records_filtered + m.records_rejected + m.records_duplicate
                 + m.records_suspense THEN 'unbalanced_file' ELSE 'usage_rows_missing' END AS finding_type,
       m.source, m.source_file, NULL::VARCHAR AS record_id, NULL::VARCHAR AS account_id,
       NULL::VARCHAR AS subscription_id, NULL::VARCHAR AS service, NULL::DECIMAL(38,9) AS value_eur,
       NULL::INTEGER AS age_days,
       'in ' || m.records_in || ' = usage ' || m.records_usage || ' + filtered ' || m.records_filtered
           || ' + rejected ' || m.records_rejected || ' + duplicate ' || m.records_duplicate || ' + suspense '
           || m.records_suspense || '; usage rows published ' || coalesce(p.usage_rows, 0)
           || CASE WHEN m.status = 'quarantined' THEN '; file unreadable: ' || coalesce(m.reason_code, '?') ELSE '' END
           AS detail
FROM ra_stg_file_manifest m LEFT JOIN published p USING (source_file)
WHERE m.status = 'quarantined'
   OR m.records_in <> m.records_usage + m.records_filtered + m.records_rejected + m.records_duplicate + m.records_suspense
   OR m.records_usage <> coalesce(p.usage_rows, 0);

-- ------------------------------------------------ C05 mediation -> rating: usage that never got rated
CREATE OR REPLACE VIEW ra_c05_unrated_usage AS
SELECT 'C05' AS control_id, u.bill_period AS period, 'unrated_usage' AS finding_type, u.source, u.source_file,
       u.record_id, u.account_id, u.subscription_id, u.service,
       ra_usage_value(u.quantity, p.charge_total, p.quantity_total) AS value_eur,
       date_diff('day', u.usage_date, CAST(date_trunc('month', u.usage_date) + INTERVAL 1 MONTH AS DATE)) AS age_days,
       'guided usage with no rated row and no rating suspense row' AS detail
FROM ra_stg_usage u
LEFT JOIN ra_unit_price p ON p.period = u.bill_period AND p.service = u.service
WHERE u.subscription_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM rated r WHERE r.record_id = u.record_id)
  AND NOT EXISTS (SELECT 1 FROM ra_stg_rating_suspense s WHERE s.record_id = u.record_id);

-- ------------------------------------------- C06 mediation -> rating: usage held in rating suspense
CREATE OR REPLACE VIEW ra_c06_rating_suspense AS
SELECT 'C06' AS control_id, coalesce(u.bill_period, 'unknown') AS period, 'rating_suspense:' || coalesce(s.reason_code, '?') AS finding_type,
       u.source, u.source_file, s.record_id, u.account_id, u.subscription_id, u.service,
       ra_usage_value(u.quantity, p.charge_total, p.quantity_total) AS value_eur,
       date_diff('day', u.usage_date, CAST(date_trunc('month', u.usage_date) + INTERVAL 1 MONTH AS DATE)) AS age_days,
       coalesce(s.message, s.reason_code) AS detail
FROM ra_stg_rating_suspense s
LEFT JOIN ra_stg_usage u USING (record_id)     -- a suspense row without its usage row still counts (value 0)
LEFT JOIN ra_unit_price p ON p.period = u.bill_period AND p.service = u.service;

-- --------------------------------------- C07 rating -> billing: rated usage missing from the invoices
CREATE OR REPLACE VIEW ra_c07_unbilled_usage AS
WITH rated_sub AS (
    SELECT bill_period AS period, account_id, subscription_id, service, sum(charge) AS rated_charge, count(*) AS records
    FROM rated WHERE payment_type = 'postpaid' GROUP BY ALL
), billed AS (
    SELECT period, subscription_id, service, sum(amount_precise) AS billed
    FROM ra_stg_invoice_lines WHERE line_type = 'usage' GROUP BY ALL
)
SELECT 'C07' AS control_id, r.period, 'unbilled_usage' AS finding_type, NULL::VARCHAR AS source,
       NULL::VARCHAR AS source_file, NULL::VARCHAR AS record_id, r.account_id, r.subscription_id, r.service,
       CAST(r.rated_charge - coalesce(b.billed, 0) AS DECIMAL(38,9)) AS value_eur, NULL::INTEGER AS age_days,
       r.records || ' rated records worth ' || r.rated_charge || ', invoiced ' || coalesce(b.billed, 0) AS detail
FROM rated_sub r LEFT JOIN billed b USING (period, subscription_id, service)
WHERE r.rated_charge - coalesce(b.billed, 0) > 0.005;

-- ------------------------- C08 inventory -> billing: active postpaid subscriptions with no recurring charge
-- Billing charges recurring fees in advance: period P is covered by P-1's invoice (advance line), or by P's
-- own invoice (first bill, or corrections after a start/stop/plan change). So a subscription row is judged
-- on the recurring lines whose service dates [service_start, service_end) (local dates, end exclusive)
-- overlap its active days in P, on any invoice that is not voided; a reversal (negative, "Reversal: ...")
-- cancels one line it reverses, so a net count of 0 means P was never (or no longer) charged.
CREATE OR REPLACE VIEW ra_c08_unbilled_subscriptions AS
WITH periods AS (
    SELECT DISTINCT period FROM ra_stg_invoices
), windows AS (
    SELECT p.period, a.account_id, coalesce(a.timezone, 'Europe/Berlin') AS tz,
           make_date(CAST(left(p.period, 4) AS BIGINT), CAST(right(p.period, 2) AS BIGINT),
                     coalesce(a.bill_cycle_day, 1)) AS p_start
    FROM periods p, customers_accounts a
), spans AS (
    SELECT w.period, s.account_id, s.subscription_id, s.plan_id,
           greatest(w.p_start, CAST(timezone(w.tz, s.valid_from) AS DATE)) AS lo,
           least(CAST(w.p_start + INTERVAL 1 MONTH AS DATE),
                 coalesce(CAST(timezone(w.tz, s.valid_to) AS DATE), CAST(w.p_start + INTERVAL 1 MONTH AS DATE))) AS hi
    FROM customers_subscriptions s JOIN windows w ON w.account_id = s.account_id
    WHERE s.payment_type = 'postpaid'
), recurring AS (
    SELECT subscription_id, CAST(service_start AS DATE) AS service_start, CAST(service_end AS DATE) AS service_end,
           CASE WHEN amount_precise < 0 OR starts_with(coalesce(description, ''), 'Reversal:') THEN -1 ELSE 1 END AS n
    FROM ra_stg_invoice_lines WHERE line_type = 'recurring' AND service_start IS NOT NULL AND service_end IS NOT NULL
), covered AS (
    SELECT sp.period, sp.subscription_id, sp.lo, sum(r.n) AS lines
    FROM spans sp JOIN recurring r
      ON r.subscription_id = sp.subscription_id AND r.service_start < sp.hi AND r.service_end > sp.lo
    WHERE sp.lo < sp.hi GROUP BY ALL
)
SELECT 'C08' AS control_id, sp.period, 'subscription_not_billed' AS finding_type, NULL::VARCHAR AS source,
       NULL::VARCHAR AS source_file, NULL::VARCHAR AS record_id, sp.account_id, sp.subscription_id,
       NULL::VARCHAR AS service, CAST(coalesce(f.monthly_fee, 0) AS DECIMAL(38,9)) AS value_eur, NULL::INTEGER AS age_days,
       'postpaid ' || sp.plan_id || ' active ' || sp.lo || '..' || sp.hi
           || ' (end exclusive) with no recurring line covering those days on any invoice' AS detail
FROM spans sp
LEFT JOIN covered c USING (period, subscription_id, lo)
LEFT JOIN ra_plan_fees f ON f.plan_id = sp.plan_id
WHERE sp.lo < sp.hi AND coalesce(c.lines, 0) <= 0;

-- ------------------------------- C09 prepaid: what the charging service debited vs what batch rating charges
CREATE OR REPLACE VIEW ra_c09_prepaid_debits AS
SELECT 'C09' AS control_id, r.bill_period AS period, 'prepaid_debit_mismatch' AS finding_type, u.source,
       u.source_file, u.record_id, u.account_id, u.subscription_id, u.service,
       CAST(abs(u.charged_amount - r.charge) AS DECIMAL(38,9)) AS value_eur, NULL::INTEGER AS age_days,
       'charging service debited ' || u.charged_amount || ', batch rating charges ' || r.charge AS detail
FROM (
    SELECT u.* REPLACE (coalesce(d.charged_amount, u.charged_amount) AS charged_amount)
    FROM ra_stg_usage u
    LEFT JOIN (SELECT DISTINCT ON (source, network_record_id) * FROM ra_charging_records
               ORDER BY source, network_record_id, source_file) d
           ON d.source = u.source AND d.network_record_id = u.network_record_id
    WHERE u.source = 'chf-prepaid'
) u JOIN rated r USING (record_id)
WHERE u.charged_amount IS NOT NULL AND abs(u.charged_amount - r.charge) > 0.005;

-- ---------------------------------------- C10 billing -> payments: allocations that do not add up
CREATE OR REPLACE VIEW ra_c10_payment_allocations AS
WITH alloc AS (
    SELECT invoice_id, sum(amount) AS allocated FROM ra_stg_allocations
    WHERE invoice_id IS NOT NULL GROUP BY ALL
)
SELECT 'C10' AS control_id, coalesce(i.period, 'unknown') AS period,
       CASE WHEN i.invoice_id IS NULL THEN 'allocation_to_unknown_invoice' ELSE 'invoice_over_allocated' END AS finding_type,
       NULL::VARCHAR AS source, NULL::VARCHAR AS source_file, a.invoice_id AS record_id, i.account_id,
       NULL::VARCHAR AS subscription_id, NULL::VARCHAR AS service,
       CAST(a.allocated - coalesce(i.total, 0) AS DECIMAL(38,9)) AS value_eur, NULL::INTEGER AS age_days,
       'allocated ' || a.allocated || ' against invoice total ' || coalesce(CAST(i.total AS VARCHAR), 'none') AS detail
FROM alloc a LEFT JOIN ra_stg_invoices i USING (invoice_id)
WHERE i.invoice_id IS NULL OR a.allocated > i.total;

-- ------------------------------------------------------------------------------- all findings
CREATE OR REPLACE VIEW ra_findings AS
SELECT * FROM ra_c01_sequence_gaps
UNION ALL BY NAME SELECT * FROM ra_c02_duplicate_files
UNION ALL BY NAME SELECT * FROM ra_c03_quiet_sources
UNION ALL BY NAME SELECT * FROM ra_c04_mediation_balance
UNION ALL BY NAME SELECT * FROM ra_c05_unrated_usage
UNION ALL BY NAME SELECT * FROM ra_c06_rating_suspense
UNION ALL BY NAME SELECT * FROM ra_c07_unbilled_usage
UNION ALL BY NAME SELECT * FROM ra_c08_unbilled_subscriptions
UNION ALL BY NAME SELECT * FROM ra_c09_prepaid_debits
UNION ALL BY NAME SELECT * FROM ra_c10_payment_allocations;

-- ------------------------------------------------------------------------------------- KPIs
-- Leakage = value of usage and charges that should have become revenue and did not (C05, C07, C08,
-- C09), as a % of rated revenue of the period.
CREATE OR REPLACE VIEW ra_kpis AS
WITH revenue AS (SELECT bill_period AS period, sum(charge) AS v FROM rated GROUP BY ALL),
fv AS (SELECT period, control_id, sum(coalesce(value_eur, 0)) AS v, count(*) AS n, max(age_days) AS max_age
       FROM ra_findings GROUP BY ALL),
files AS (SELECT ra_period AS period, sum(records_in) AS rin, sum(records_duplicate) AS dup, sum(records_rejected) AS rej
          FROM ra_stg_file_manifest GROUP BY ALL),
periods AS (SELECT period FROM revenue UNION SELECT period FROM fv UNION SELECT period FROM files),
inv AS (SELECT period, sum(total) AS invoiced FROM ra_stg_invoices GROUP BY ALL),
paid AS (SELECT i.period, sum(a.amount) AS collected
         FROM ra_stg_allocations a JOIN ra_stg_invoices i USING (invoice_id) GROUP BY ALL),
leak AS (SELECT period, sum(v) AS v FROM fv WHERE control_id IN ('C05', 'C07', 'C08', 'C09') GROUP BY ALL)
SELECT p.period, k.kpi, k.value, k.unit FROM periods p
LEFT JOIN revenue r USING (period) LEFT JOIN leak l USING (period) LEFT JOIN files f USING (period)
LEFT JOIN inv USING (period) LEFT JOIN paid USING (period),
LATERAL (VALUES
    ('rated_revenue', CAST(coalesce(r.v, 0) AS DECIMAL(38,9)), 'EUR'),
    ('leakage_value', CAST(coalesce(l.v, 0) AS DECIMAL(38,9)), 'EUR'),
    ('leakage_pct', ra_pct(coalesce(l.v, 0), r.v), '%'),
    ('unbilled_usage_value', CAST((SELECT coalesce(sum(v), 0) FROM fv WHERE fv.period = p.period AND control_id = 'C07') AS DECIMAL(38,9)), 'EUR'),
    ('suspense_value', CAST((SELECT coalesce(sum(v), 0) FROM fv WHERE fv.period = p.period AND control_id = 'C06') AS DECIMAL(38,9)), 'EUR'),
    ('suspense_records', CAST((SELECT coalesce(sum(n), 0) FROM fv WHERE fv.period = p.period AND control_id = 'C06') AS DECIMAL(38,9)), 'records'),
    ('suspense_max_age_days', CAST((SELECT coalesce(max(max_age), 0) FROM fv WHERE fv.period = p.period AND control_id = 'C06') AS DECIMAL(38,9)), 'days'),
    ('duplicate_rate_pct', ra_pct(coalesce(f.dup, 0), f.rin), '%'),
    ('reject_rate_pct', ra_pct(coalesce(f.rej, 0), f.rin), '%'),
    ('invoiced_total', CAST(coalesce(inv.invoiced, 0) AS DECIMAL(38,9)), 'EUR'),
    ('collected_total', CAST(coalesce(paid.collected, 0) AS DECIMAL(38,9)), 'EUR'),
    ('outstanding_total', CAST(coalesce(inv.invoiced, 0) - coalesce(paid.collected, 0) AS DECIMAL(38,9)), 'EUR'),
    ('in_dispute_total', CAST((SELECT coalesce(sum(overdue), 0) FROM ra_stg_dunning WHERE excluded_reason = 'dispute') AS DECIMAL(38,9)), 'EUR'),
    ('written_off_total', CAST((SELECT coalesce(sum(overdue), 0) FROM ra_stg_dunning WHERE step_code = 'WRITE_OFF') AS DECIMAL(38,9)), 'EUR')
) k(kpi, value, unit);
