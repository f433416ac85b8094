-- requires: usage, file_manifest, mediation_suspense, mediation_duplicates
-- Mediation analyst views (docs/mediation.md). Quantities are integers in base units (seconds, events, bytes).

-- Billable usage per day, source and service: the daily and weekly traffic shape.
CREATE OR REPLACE VIEW usage_daily AS
SELECT usage_date, source, service, count(*) AS records, sum(quantity) AS quantity,
       count(DISTINCT subscription_id) AS subscriptions
FROM usage
GROUP BY ALL;

-- Outcomes per source and file date, with the conservation check (records in = sum of the outcomes).
CREATE OR REPLACE VIEW mediation_file_outcomes AS
SELECT source, file_date, count(*) AS files,
       count(*) FILTER (WHERE status = 'quarantined') AS files_quarantined,
       count(*) FILTER (WHERE status = 'duplicate_file') AS files_duplicate,
       sum(records_in) AS records_in, sum("usage") AS "usage", sum(filtered) AS filtered, sum(rejected) AS rejected,
       sum(duplicate) AS duplicate, sum(suspense) AS suspense,
       bool_and(balanced) AS balanced
FROM file_manifest
GROUP BY ALL;

-- Suspense records with their age in days from the usage date (age it against your reporting date).
CREATE OR REPLACE VIEW mediation_suspense_records AS
SELECT record_id, source, source_file, record_offset, msisdn, imsi, service, start_time, usage_date, quantity,
       suspense_reason, suspense_message
FROM mediation_suspense;

-- Every duplicate copy beside the copy that survived (same record id, smallest (file, offset) wins).
CREATE OR REPLACE VIEW mediation_duplicate_pairs AS
SELECT d.record_id, d.source_file, d.record_offset, d.duplicate_of_file, d.duplicate_of_offset, d.usage_date
FROM mediation_duplicates d;
