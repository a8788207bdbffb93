//! The filter-tree compiler, keyset sorting and cursors, and substring search, for every
//! object with records: conditions on standard fields, `custom.<key>` and related records
//! become SQL with every value bound.

use super::*;

per_backend! {
    /// Pushes the SQL expression of a field on `alias`.
    fn push_expr(qb: &mut sql::Builder, spec: &Spec, alias: &str, target: &Target) {
        match target {
            Target::Standard(info) | Target::Related { field: info, .. } => {
                let column = spec.column(info.name).unwrap_or("id");
                qb.push(alias).push(".").push(column);
            }
            Target::Custom { key, kind } => push_custom_expr(qb, alias, key, *kind),
        }
    }

    pub(crate) fn push_custom_expr(qb: &mut sql::Builder, alias: &str, key: &str, kind: FieldKind) {
        if BACKEND == Backend::Sqlite {
            let path = match kind {
                FieldKind::Money => format!("$.\"{key}\".amount_minor"),
                _ => format!("$.\"{key}\""),
            };
            qb.push("json_extract(").push(alias).push(".custom, ").push_bind(path).push(")");
        } else {
            let (open, close) = match kind {
                FieldKind::Integer => ("((", ")::bigint)"),
                FieldKind::Number => ("((", ")::double precision)"),
                FieldKind::Boolean => ("((", ")::boolean)"),
                FieldKind::Timestamp => ("((", ")::timestamptz)"),
                FieldKind::Money => ("((", ")::bigint)"),
                _ => ("(", ")"),
            };
            qb.push(open).push(alias).push(".custom ");
            if kind == FieldKind::Money {
                qb.push("-> ").push_bind(key.to_owned()).push(" ->> 'amount_minor'");
            } else {
                qb.push("->> ").push_bind(key.to_owned());
            }
            qb.push(close);
        }
    }

    fn push_scalar(qb: &mut sql::Builder, scalar: &Scalar, lower: bool, custom: bool) {
        match scalar {
            Scalar::Text(text) if lower => { qb.push_bind(text.to_lowercase()); }
            Scalar::Text(text) => { qb.push_bind(text.clone()); }
            Scalar::Uuid(id) => { qb.push_bind(*id); }
            Scalar::Integer(n) => { qb.push_bind(*n); }
            Scalar::Number(n) => { qb.push_bind(*n); }
            Scalar::Boolean(b) => { qb.push_bind(*b); }
            // Custom times are stored as RFC 3339 text with Z; SQLite compares them as text.
            Scalar::Timestamp(t) if custom && BACKEND == Backend::Sqlite => {
                qb.push_bind(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
            }
            Scalar::Timestamp(t) => { qb.push_bind(*t); }
        }
    }

    /// Compiles a filter tree onto the record alias `alias`. `negated` pushes a `not` down to
    /// the conditions, so that negations include missing values (SQL's NULL) as users expect,
    /// without wrapping conditions in a way that keeps indexes from serving them.
    ///
    /// Conditions on a related record (`company.name`) consider only related records the
    /// caller may see: a hidden company matches nothing, so that filtering the contacts one
    /// sees cannot read out the fields of a company one does not.
    pub(crate) fn push_filter(qb: &mut sql::Builder, ctx: &AuthContext, filter: &Filter, spec: &Spec, alias: &str, negated: bool) {
        match filter {
            Node::And(items) | Node::Or(items) => {
                let conjunction = matches!(filter, Node::And(_)) != negated;
                qb.push("(");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        qb.push(if conjunction { " and " } else { " or " });
                    }
                    push_filter(qb, ctx, item, spec, alias, negated);
                }
                qb.push(")");
            }
            Node::Not(inner) => push_filter(qb, ctx, inner, spec, alias, !negated),
            Node::Condition(condition) => push_condition(qb, ctx, condition, spec, alias, negated),
        }
    }

    fn push_condition(qb: &mut sql::Builder, ctx: &AuthContext, c: &Condition, spec: &Spec, alias: &str, negated: bool) {
        if let Target::Related { relation, field } = &c.target {
            let Some((rel, related)) = spec.relation(relation).and_then(|r| crate::engine::storage_spec(r.object).map(|s| (r, s))) else {
                qb.push("false");
                return;
            };
            // Related conditions hold when a live related record matches; their negation
            // when none does (which includes having no related record).
            qb.push(if negated { "not exists (" } else { "exists (" })
                .push("select 1 from ")
                .push(related.table)
                .push(" r where r.id = ")
                .push(alias)
                .push(".")
                .push(rel.foreign_key)
                .push(" and r.org_id = ")
                .push(alias)
                .push(".org_id and r.deleted_at is null");
            sql::push_visibility_on(qb, ctx, related.object, "r");
            qb.push(" and ");
            let inner = Condition {
                target: Target::Standard(*field),
                op: c.op,
                operand: c.operand.clone(),
            };
            push_condition(qb, ctx, &inner, related, "r", false);
            qb.push(")");
            return;
        }
        if c.target.kind() == FieldKind::Tags {
            push_tags_condition(qb, c, spec, alias, negated);
            return;
        }
        let (lower_column, lower) = case_folding(&c.target);
        let custom = matches!(c.target, Target::Custom { .. });
        let expr = |qb: &mut sql::Builder| {
            if lower_column {
                qb.push("lower(");
                push_expr(qb, spec, alias, &c.target);
                qb.push(")");
            } else {
                push_expr(qb, spec, alias, &c.target);
            }
        };
        // Equality on a custom value: JSON containment, which PostgreSQL's GIN index serves.
        if let (Target::Custom { key, kind }, Op::Eq, Operand::One(value), false, Backend::Postgres) =
            (&c.target, c.op, &c.operand, negated, BACKEND)
            && matches!(kind, FieldKind::Text | FieldKind::Integer | FieldKind::Boolean)
        {
            qb.push("(").push(alias).push(".custom @> jsonb_build_object(").push_bind(key.clone()).push("::text, ");
            push_scalar(qb, value, false, true);
            qb.push("))");
            return;
        }
        let positive = match c.op {
            Op::Neq | Op::Nin => negated,
            _ => !negated,
        };
        let or_null = |qb: &mut sql::Builder| {
            qb.push("(");
            expr(qb);
            qb.push(" is null or ");
        };
        match (&c.operand, c.op) {
            (Operand::Null(want_null), _) => {
                expr(qb);
                qb.push(if *want_null != negated { " is null" } else { " is not null" });
            }
            (Operand::One(value), Op::Eq | Op::Neq) => {
                if positive {
                    expr(qb);
                    qb.push(" = ");
                    push_scalar(qb, value, lower, custom);
                } else {
                    or_null(qb);
                    expr(qb);
                    qb.push(" <> ");
                    push_scalar(qb, value, lower, custom);
                    qb.push(")");
                }
            }
            (Operand::One(value), Op::Lt | Op::Lte | Op::Gt | Op::Gte) => {
                let (op, inverse) = match c.op {
                    Op::Lt => (" < ", " >= "),
                    Op::Lte => (" <= ", " > "),
                    Op::Gt => (" > ", " <= "),
                    _ => (" >= ", " < "),
                };
                if negated {
                    or_null(qb);
                    expr(qb);
                    qb.push(inverse);
                    push_scalar(qb, value, lower, custom);
                    qb.push(")");
                } else {
                    expr(qb);
                    qb.push(op);
                    push_scalar(qb, value, lower, custom);
                }
            }
            (Operand::One(Scalar::Text(text)), Op::Contains | Op::StartsWith) => {
                let needle = like_escape(&if lower { text.to_lowercase() } else { text.clone() });
                let pattern = if c.op == Op::Contains { format!("%{needle}%") } else { format!("{needle}%") };
                if negated {
                    or_null(qb);
                    expr(qb);
                    qb.push(" not like ").push_bind(pattern).push(" escape '\\')");
                } else {
                    expr(qb);
                    qb.push(" like ").push_bind(pattern).push(" escape '\\'");
                }
            }
            (Operand::Many(values), Op::In | Op::Nin) => {
                if !positive {
                    or_null(qb);
                }
                expr(qb);
                qb.push(if positive { " in (" } else { " not in (" });
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        qb.push(", ");
                    }
                    push_scalar(qb, value, lower, custom);
                }
                qb.push(")");
                if !positive {
                    qb.push(")");
                }
            }
            (Operand::Range(low, high), Op::Between) => {
                if negated {
                    or_null(qb);
                    expr(qb);
                    qb.push(" < ");
                    push_scalar(qb, low, lower, custom);
                    qb.push(" or ");
                    expr(qb);
                    qb.push(" > ");
                    push_scalar(qb, high, lower, custom);
                    qb.push(")");
                } else {
                    expr(qb);
                    qb.push(" between ");
                    push_scalar(qb, low, lower, custom);
                    qb.push(" and ");
                    push_scalar(qb, high, lower, custom);
                }
            }
            // `resolve` admits no other combination.
            _ => {
                qb.push(if negated { "true" } else { "false" });
            }
        }
    }

    /// `tags contains x` (and custom multi_select) and `is_null` (no values).
    fn push_tags_condition(qb: &mut sql::Builder, c: &Condition, spec: &Spec, alias: &str, negated: bool) {
        let (wanted, exists) = match &c.operand {
            Operand::One(Scalar::Text(text)) => (Some(text.clone()), !negated),
            Operand::Null(want_null) => (None, *want_null == negated),
            _ => (None, negated),
        };
        qb.push(if exists { "exists (" } else { "not exists (" });
        match &c.target {
            Target::Custom { key, .. } => {
                if BACKEND == Backend::Sqlite {
                    qb.push("select 1 from json_each(").push(alias).push(".custom, ").push_bind(format!("$.\"{key}\"")).push(") je");
                    if let Some(wanted) = wanted {
                        qb.push(" where je.value = ").push_bind(wanted);
                    }
                } else {
                    qb.push("select 1 from jsonb_array_elements_text(case when jsonb_typeof(")
                        .push(alias).push(".custom -> ").push_bind(key.clone())
                        .push(") = 'array' then ").push(alias).push(".custom -> ").push_bind(key.clone())
                        .push(" else '[]'::jsonb end) je(value)");
                    if let Some(wanted) = wanted {
                        qb.push(" where je.value = ").push_bind(wanted);
                    }
                }
            }
            _ => {
                qb.push("select 1 from record_keys k where k.org_id = ")
                    .push(alias)
                    .push(".org_id and k.object_type = ")
                    .push_bind(spec.object.as_str())
                    .push(" and k.object_id = ")
                    .push(alias)
                    .push(".id and k.kind = 'tag'");
                if let Some(wanted) = wanted {
                    qb.push(" and k.value = ").push_bind(wanted);
                }
            }
        }
        qb.push(")");
    }

    /// `and <q matches>` on alias `t`: FTS5 trigram on SQLite and trigram-indexed LIKE on
    /// PostgreSQL for 3 characters or more; a plain LIKE for shorter queries, which trigrams
    /// cannot serve.
    pub(crate) fn push_search(qb: &mut sql::Builder, spec: &Spec, q: &str) {
        let (text, digits) = search_terms(q);
        let terms: Vec<String> = std::iter::once(text).chain(digits).collect();
        qb.push(" and (");
        for (i, term) in terms.iter().enumerate() {
            if i > 0 {
                qb.push(" or ");
            }
            if BACKEND == Backend::Sqlite && term.chars().count() >= 3 {
                qb.push("t.rid in (select rowid from ")
                    .push(spec.search_table)
                    .push(" where ")
                    .push(spec.search_table)
                    .push(" match ")
                    .push_bind(fts_phrase(term))
                    .push(")");
            } else {
                qb.push("t.search_text like ")
                    .push_bind(format!("%{}%", like_escape(term)))
                    .push(" escape '\\'");
            }
        }
        qb.push(")");
    }

    fn sort_nullable(key: &SortKey) -> bool {
        match &key.target {
            Target::Standard(info) => info.name == "last_activity_at",
            _ => true,
        }
    }

    /// ` order by <keys>, t.id` (nullable keys last in both directions).
    pub(crate) fn push_order(qb: &mut sql::Builder, spec: &Spec, sort: &[SortKey]) {
        qb.push(" order by ");
        for key in sort {
            push_expr(qb, spec, "t", &key.target);
            qb.push(if key.descending { " desc" } else { " asc" });
            if sort_nullable(key) {
                qb.push(" nulls last");
            }
            qb.push(", ");
        }
        let descending = sort.first().is_some_and(|k| k.descending);
        qb.push(if descending { "t.id desc" } else { "t.id asc" });
    }

    fn push_cursor_value(qb: &mut sql::Builder, key: &SortKey, value: &Value) -> Result<(), StoreError> {
        let custom = matches!(key.target, Target::Custom { .. });
        let scalar = match key.target.kind() {
            FieldKind::Timestamp => value
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| Scalar::Timestamp(t.with_timezone(&Utc))),
            FieldKind::Integer | FieldKind::Money => value.as_i64().map(Scalar::Integer),
            FieldKind::Number => value.as_f64().map(Scalar::Number),
            FieldKind::Boolean => value.as_bool().map(Scalar::Boolean),
            FieldKind::Uuid => value.as_str().and_then(|s| Uuid::parse_str(s).ok()).map(Scalar::Uuid),
            _ => value.as_str().map(|s| Scalar::Text(s.to_owned())),
        };
        let scalar = scalar.ok_or_else(bad_cursor)?;
        push_scalar(qb, &scalar, false, custom);
        Ok(())
    }

    /// `and <row after the cursor>` for the sort.
    pub(crate) fn push_after(
        qb: &mut sql::Builder,
        spec: &Spec,
        sort: &[SortKey],
        values: &[Value],
        id: Uuid,
    ) -> Result<(), StoreError> {
        let descending = sort.first().is_some_and(|k| k.descending);
        let id_op = if descending { " < " } else { " > " };
        // One key that is never null: a row comparison, which an index serves.
        if let ([key], [value]) = (sort, values)
            && !sort_nullable(key)
        {
            qb.push(" and (");
            push_expr(qb, spec, "t", &key.target);
            qb.push(", t.id)").push(if key.descending { " < (" } else { " > (" });
            push_cursor_value(qb, key, value)?;
            qb.push(", ").push_bind(id).push(")");
            return Ok(());
        }
        qb.push(" and ");
        push_after_from(qb, spec, sort, values, id, id_op)
    }

    fn push_after_from(
        qb: &mut sql::Builder,
        spec: &Spec,
        sort: &[SortKey],
        values: &[Value],
        id: Uuid,
        id_op: &str,
    ) -> Result<(), StoreError> {
        let (Some(key), Some(value)) = (sort.first(), values.first()) else {
            qb.push("t.id").push(id_op).push_bind(id);
            return Ok(());
        };
        qb.push("(");
        if value.is_null() {
            // In the null tail: only the following keys order the rest of it.
            push_expr(qb, spec, "t", &key.target);
            qb.push(" is null and ");
            push_after_from(qb, spec, &sort[1..], &values[1..], id, id_op)?;
        } else {
            push_expr(qb, spec, "t", &key.target);
            qb.push(if key.descending { " < " } else { " > " });
            push_cursor_value(qb, key, value)?;
            if sort_nullable(key) {
                qb.push(" or ");
                push_expr(qb, spec, "t", &key.target);
                qb.push(" is null");
            }
            qb.push(" or (");
            push_expr(qb, spec, "t", &key.target);
            qb.push(" = ");
            push_cursor_value(qb, key, value)?;
            qb.push(" and ");
            push_after_from(qb, spec, &sort[1..], &values[1..], id, id_op)?;
            qb.push(")");
        }
        qb.push(")");
        Ok(())
    }
}
