-- lookup_statistics (postgres): companies are found by domain (batch upserts with id_property
-- domain, duplicate detection); without an index each lookup read the organization's
-- companies one by one.
create index companies_domain on companies (org_id, domain);

-- Batches find contacts by `lower(email) in (… up to 1,000 …)`. The unique index on it is
-- partial, and PostgreSQL does not estimate from a partial index's statistics: it took each
-- value to match 0.5 % of the table, judged a 1,000-value list to match all of it, and read the
-- whole table instead of the index. Statistics on the expression itself fix the estimate.
create statistics contacts_email_folded on (lower(email)) from contacts;
