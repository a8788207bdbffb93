-- Orders move onto the object kit's engine (crates/domain/src/objects/order.rs). Their table
-- already has the engine's layout on PostgreSQL (lines a jsonb array, search_text with its
-- trigram index); this migration keeps the two databases' histories in step.
select 1;
