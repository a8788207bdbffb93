-- Products move onto the object kit's engine (crates/domain/src/objects/product.rs), whose
-- table layout names a sortable text field's lower-case column `<field>_sort` and the FTS5
-- table `<table>_search`.
alter table products rename column sort_name to name_sort;
alter table product_search rename to products_search;
