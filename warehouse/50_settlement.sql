-- requires: settlement_statements, settlement_statement_lines
-- Partner settlement views (docs/settlement.md). Statement lines are rounded once per line (currency minor
-- unit, HALF_UP); EUR amounts convert the precise sum at the rate valid on the period's first day.

-- One row per partner statement: payable, receivable and net in EUR.
CREATE OR REPLACE VIEW settlement_partner_balances AS
SELECT period, partner_type, partner_id, partner_name, lines, records, payable_eur, receivable_eur, net_eur,
       CASE WHEN net_eur >= 0 THEN 'partner pays us' ELSE 'we pay partner' END AS settles
FROM settlement_statements;

-- Roaming per TADIG and service, in the IOT currency and in EUR.
CREATE OR REPLACE VIEW settlement_roaming AS
SELECT period, partner_id AS tadig, partner_name, direction, traffic_type, service, records, quantity, minutes,
       currency, amount_precise, amount, fx_rate, amount_eur
FROM settlement_statement_lines WHERE partner_type = 'roaming';

-- Interconnect: minutes and calls per carrier, traffic type and time band.
CREATE OR REPLACE VIEW settlement_interconnect AS
SELECT period, partner_id AS carrier, traffic_type, band, direction, records AS calls, minutes, currency,
       amount, amount_eur
FROM settlement_statement_lines WHERE partner_type = 'interconnect';

-- Content partners: revenue basis, share and amount due.
CREATE OR REPLACE VIEW settlement_content_shares AS
SELECT period, partner_id, partner_name, service, records, basis_amount, share_pct, amount, amount_eur
FROM settlement_statement_lines WHERE partner_type = 'content';

-- Dealers: activation commissions, charge-backs and residual shares.
CREATE OR REPLACE VIEW settlement_dealer_commissions AS
SELECT period, partner_id AS dealer_id, partner_name, service AS commission_type, direction, records AS subscriptions,
       basis_amount, share_pct, amount, amount_eur
FROM settlement_statement_lines WHERE partner_type = 'dealer';

-- Totals per period and partner type (payable vs receivable), for finance's month-end.
CREATE OR REPLACE VIEW settlement_period_totals AS
SELECT period, partner_type, count(*) AS statements, sum(payable_eur) AS payable_eur,
       sum(receivable_eur) AS receivable_eur, sum(net_eur) AS net_eur
FROM settlement_statements GROUP BY ALL ORDER BY ALL;
