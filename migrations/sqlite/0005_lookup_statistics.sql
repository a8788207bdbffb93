-- lookup_statistics (sqlite): companies are found by domain (batch upserts with id_property
-- domain, duplicate detection); without an index each lookup read the organization's
-- companies one by one.
create index companies_domain on companies (org_id, domain);
