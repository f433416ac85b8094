-- requires: rated, rating_suspense, settlement_entries
-- Rating analyst views (docs/rating.md). Amounts are DECIMAL(38,9) in the tariff currency, unrounded
-- to the currency unit (the bill cycle rounds invoice lines); quantities are base units.

-- Usage revenue per bill period, plan, service and payment type (prepaid lines are rated too).
CREATE OR REPLACE VIEW rating_revenue AS
SELECT bill_period, plan_id, service, payment_type, currency, count(*) AS records,
       sum(quantity) AS quantity, sum(quantity_included) AS quantity_included,
       sum(quantity_charged) AS quantity_charged, sum(charge) AS charge
FROM rated
GROUP BY ALL;

-- Allowance consumption per pool (line or family/business group) and bill period.
CREATE OR REPLACE VIEW rating_allowance_use AS
SELECT bill_period, allowance_id, allowance_pool, count(*) AS records, sum(quantity_included) AS included,
       sum(quantity - quantity_included) AS beyond_allowance
FROM rated
WHERE allowance_id IS NOT NULL
GROUP BY ALL;

-- What each rate earned, by time band: the commercial view of the catalogue.
CREATE OR REPLACE VIEW rating_by_rate AS
SELECT bill_period, rate_id, band, destination_class, zone, count(*) AS records, sum(charge) AS charge,
       count(*) FILTER (WHERE capped) AS capped_records, count(*) FILTER (WHERE band_segments > 1) AS split_calls
FROM rated
GROUP BY ALL;

-- Records that could not be rated, by reason (fix the catalogue, then `telbill rate` again).
CREATE OR REPLACE VIEW rating_suspense_summary AS
SELECT bill_period, reason_code, service, count(*) AS records, min(start_time) AS first_seen,
       max(start_time) AS last_seen
FROM rating_suspense
GROUP BY ALL;

-- Wholesale cost (roaming IOT, interconnect termination) per partner and month of usage.
CREATE OR REPLACE VIEW rating_settlement_by_partner AS
SELECT strftime(usage_date, '%Y-%m') AS usage_month, partner_type, partner_id, direction, service, currency,
       count(*) AS records, sum(quantity) AS quantity, sum(amount) AS amount
FROM settlement_entries
GROUP BY ALL;

-- Margin per roaming/off-net record: what we charged the subscriber against what we pay the partner.
CREATE OR REPLACE VIEW rating_record_margin AS
WITH cost AS (SELECT record_id, sum(amount) AS wholesale_cost FROM settlement_entries GROUP BY record_id)
SELECT r.record_id, r.bill_period, r.plan_id, r.service, r.zone, r.destination_class, r.charge,
       c.wholesale_cost, r.charge - c.wholesale_cost AS margin
FROM rated r JOIN cost c USING (record_id);
