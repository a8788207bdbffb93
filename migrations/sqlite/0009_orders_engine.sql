-- Orders move onto the object kit's engine (crates/domain/src/objects/order.rs), whose table
-- layout names the FTS5 table `<table>_search`. Every other column already has the engine's
-- layout: lines are a JSON array, the status and currency text.
alter table order_search rename to orders_search;
