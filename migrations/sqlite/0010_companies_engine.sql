-- Companies move onto the object kit's engine (crates/domain/src/objects/company.rs), whose
-- table layout names a sortable text field's lower-case column `<field>_sort`. Likely
-- duplicates are found by column (the phone by its E.164 form), no longer by record keys.
alter table companies rename column sort_name to name_sort;
delete from record_keys where object_type = 'company' and kind in ('domain', 'phone');
create index companies_phone on companies (org_id, phone_e164) where phone_e164 is not null;
alter table company_search rename to companies_search;
