-- requires: invoices, invoice_lines, invoice_tax_lines
-- Bill-cycle analyst views (docs/billing.md). Amounts are DECIMAL(18,2) (rounded, as printed) beside
-- DECIMAL(38,9) precise amounts; only finalised documents count as billed revenue.

-- Invoices and credit notes per period, entity, status and kind.
CREATE OR REPLACE VIEW billing_invoice_summary AS
SELECT period, billing_entity, kind, status, currency, count(*) AS documents,
       sum(subtotal) AS subtotal, sum(tax_total) AS tax_total, sum(total) AS total, sum(amount_due) AS amount_due
FROM invoices
GROUP BY ALL
ORDER BY period, billing_entity, kind, status;

-- Billed revenue per period, GL account, line type and service (finalised invoices and credit notes).
CREATE OR REPLACE VIEW billing_revenue AS
SELECT l.period, i.billing_entity, l.gl_account, l.line_type, l.service, l.currency,
       count(*) AS lines, sum(l.amount) AS amount, sum(l.amount_precise) AS amount_precise
FROM invoice_lines l JOIN invoices i USING (invoice_id)
WHERE i.status = 'finalised'
GROUP BY ALL
ORDER BY ALL;

-- Taxes per period, jurisdiction, tax code and category (finalised documents).
CREATE OR REPLACE VIEW billing_tax_summary AS
SELECT t.period, t.jurisdiction, t.tax_code, t.name, t.tax_category, t.rate, t.currency,
       count(*) AS invoices, sum(t.base) AS base, sum(t.amount) AS amount
FROM invoice_tax_lines t JOIN invoices i USING (invoice_id)
WHERE i.status = 'finalised'
GROUP BY ALL
ORDER BY ALL;

-- The invoice identity, checked in SQL: total = sum of rounded lines + taxes (expect zero rows).
CREATE OR REPLACE VIEW billing_identity_breaks AS
WITH l AS (SELECT invoice_id, sum(amount) AS lines FROM invoice_lines GROUP BY ALL),
     t AS (SELECT invoice_id, sum(amount) AS taxes FROM invoice_tax_lines GROUP BY ALL)
SELECT i.invoice_id, i.invoice_number, i.total, coalesce(l.lines, 0) AS lines, coalesce(t.taxes, 0) AS taxes
FROM invoices i LEFT JOIN l USING (invoice_id) LEFT JOIN t USING (invoice_id)
WHERE i.total <> coalesce(l.lines, 0) + coalesce(t.taxes, 0) OR i.subtotal <> coalesce(l.lines, 0);
