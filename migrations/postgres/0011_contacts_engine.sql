-- Contacts move onto the object kit's engine (crates/domain/src/objects/contact.rs): the
-- display name is a column beside its lower-case sort column `name_sort`, and the search
-- text is written whole (the contact's own words and its company's name), so `search_own`
-- goes.
alter table contacts add column name text;
update contacts set name = case
    when first_name is not null and last_name is not null
        and first_name ~ '^[぀-ヿ㐀-䶿一-鿿가-힯豈-﫿]+$'
        and last_name ~ '^[぀-ヿ㐀-䶿一-鿿가-힯豈-﫿]+$'
        then last_name || first_name
    when first_name is not null and last_name is not null then first_name || ' ' || last_name
    else coalesce(first_name, last_name, email)
end;
alter table contacts rename column sort_name to name_sort;
alter table contacts drop column search_own;
