//! Orders: purchase history, with lines and totals Rapport computes. The declaration, and the
//! rules that hold whatever the storage: a line is `quantity × unit_price_minor −
//! discount_minor`, an order the sum of its lines, and it belongs to a contact or a company.
//! (The storage half — each line's product, a contact's company, the customers' purchase
//! figures — is `storage::rules::order`.)

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::ObjectType;
use crate::error::FieldIssue;
use crate::kit::record::Record;
use crate::kit::{Capabilities, FieldKind::*, FieldSpec, Literal, ObjectSpec, Rules};
use crate::write::IdProperty;

/// An order's statuses; paid and fulfilled orders are purchases in every aggregate (the
/// customers' figures count them), the others are not.
pub const STATUSES: &[&str] = &["pending", "paid", "fulfilled", "cancelled", "refunded"];

/// `quantity × unit_price − discount`, or why not.
pub fn line_total(
    quantity: i64,
    unit_price_minor: i64,
    discount_minor: i64,
) -> Result<i64, &'static str> {
    let total = quantity
        .checked_mul(unit_price_minor)
        .and_then(|gross| gross.checked_sub(discount_minor))
        .ok_or("the line's amount is too large")?;
    if total < 0 {
        return Err("the discount is larger than the line's amount");
    }
    Ok(total)
}

const LINE_FIELDS: &[FieldSpec] = &[
    FieldSpec::reference("product_id", ObjectType::Product, &[Cow::Borrowed("sku")])
        .required()
        .about("The product, by `product_id` or `sku`."),
    FieldSpec::read_only("sku", Text { max_chars: 100 })
        .searchable()
        .about("The product's sku when the line was written."),
    FieldSpec::read_only("name", Text { max_chars: 200 })
        .about("The product's name when the line was written."),
    FieldSpec::new(
        "quantity",
        Integer {
            min: 1,
            max: i64::MAX,
        },
    )
    .required(),
    FieldSpec::new("unit_price_minor", Money)
        .about("Default: the product's price, when it has one in the order's currency."),
    FieldSpec::new("discount_minor", Money)
        .default_to(Literal::Integer(0))
        .about("For the whole line."),
    FieldSpec::read_only("total_minor", Money)
        .computed()
        .about("`quantity × unit_price_minor − discount_minor`."),
];

pub static SPEC: ObjectSpec = ObjectSpec {
    object: ObjectType::Order,
    plural: Cow::Borrowed("orders"),
    table: Cow::Borrowed("orders"),
    fields: Cow::Borrowed(&[
        FieldSpec::read_only("id", Id),
        FieldSpec::new("external_id", Text { max_chars: 255 }).searchable(),
        FieldSpec::new("number", Text { max_chars: 100 })
            .unique()
            .searchable()
            .about("Your order number; unique among the organization's live orders."),
        FieldSpec::reference(
            "contact_id",
            ObjectType::Contact,
            &[
                Cow::Borrowed("contact_external_id"),
                Cow::Borrowed("contact_email"),
            ],
        )
        .filterable()
        .listed_under()
        .about("The contact, by `contact_id`, `contact_external_id` or `contact_email`."),
        FieldSpec::reference(
            "company_id",
            ObjectType::Company,
            &[Cow::Borrowed("company_external_id")],
        )
        .filterable()
        .listed_under()
        .about(
            "The company, by `company_id` or `company_external_id`; a new order of a \
             contact at a company is the company's too.",
        ),
        FieldSpec::new("status", Enum(STATUSES))
            .filterable()
            .default_to(Literal::Text("pending"))
            .about("Paid and fulfilled orders are purchases in the customers' figures."),
        FieldSpec::new("ordered_at", Timestamp)
            .sortable()
            .filterable()
            .default_to(Literal::Now),
        FieldSpec::new("currency", Currency).required(),
        FieldSpec::new("total_minor", Money)
            .sortable()
            .computed()
            .about("The sum of the lines' totals."),
        FieldSpec::new("lines", Lines(LINE_FIELDS))
            .required()
            .searchable()
            .about("1 to 500 lines; sent, they replace the order's lines as a whole."),
        FieldSpec::read_only("version", Version),
        FieldSpec::read_only("created_at", Timestamp).sortable(),
        FieldSpec::read_only("updated_at", Timestamp).sortable(),
    ]),
    natural_keys: Cow::Borrowed(&[IdProperty::Id, IdProperty::ExternalId, IdProperty::Number]),
    capabilities: Capabilities {
        custom_fields: true,
        events: true,
        import: true,
        export: true,
        ..Capabilities::NONE
    },
    about: Cow::Borrowed(
        "A purchase: its lines, totals and status, from an ERP, a shop or by hand.",
    ),
    engine: true,
};

/// The rules of orders.
pub struct OrderRules;

pub static RULES: OrderRules = OrderRules;

fn integer(value: Option<&Value>) -> Option<i64> {
    value.and_then(Value::as_i64)
}

impl Rules for OrderRules {
    fn derive(
        &self,
        given: &Map<String, Value>,
        values: &mut Map<String, Value>,
        before: Option<&Record>,
        issues: &mut Vec<FieldIssue>,
    ) {
        let has = |values: &Map<String, Value>, name: &str| {
            values.get(name).is_some_and(|value| !value.is_null())
        };
        if !has(values, "contact_id") && !has(values, "company_id") {
            issues.push(FieldIssue::new(
                "contact_id",
                "required",
                "an order needs a contact_id or a company_id (or their external ids)",
            ));
        }
        if let Some(before) = before
            && given
                .get("currency")
                .is_some_and(|c| c != before.value("currency"))
            && !given.contains_key("lines")
        {
            issues.push(FieldIssue::new(
                "lines",
                "required",
                "send the lines again when the currency changes",
            ));
        }
        let Some(Value::Array(lines)) = values.get_mut("lines") else {
            return;
        };
        let mut total = Some(0_i64);
        for (i, line) in lines.iter_mut().enumerate() {
            let Some(line) = line.as_object_mut() else {
                continue;
            };
            let at = |field: &str| format!("lines[{i}].{field}");
            let Some(price) = integer(line.get("unit_price_minor")) else {
                if line.contains_key("product_id") {
                    issues.push(FieldIssue::new(
                        at("unit_price_minor"),
                        "required",
                        "the product has no price in the order's currency; give unit_price_minor",
                    ));
                }
                total = None;
                continue;
            };
            let quantity = integer(line.get("quantity")).unwrap_or(0);
            let discount = integer(line.get("discount_minor")).unwrap_or(0);
            match line_total(quantity, price, discount) {
                Ok(computed) => {
                    if let Some(claimed) = integer(line.get("total_minor"))
                        && claimed != computed
                    {
                        issues.push(FieldIssue::new(
                            at("total_minor"),
                            "mismatch",
                            format!("is {claimed}, but the line comes to {computed}"),
                        ));
                    }
                    line.insert("total_minor".into(), Value::from(computed));
                    total = total.and_then(|sum| sum.checked_add(computed));
                }
                Err(message) => {
                    issues.push(FieldIssue::new(
                        at("discount_minor"),
                        "invalid_value",
                        message,
                    ));
                    total = None;
                }
            }
        }
        let Some(total) = total else {
            if lines.len() > 1 && issues.is_empty() {
                issues.push(FieldIssue::new(
                    "lines",
                    "invalid_value",
                    "the order's total is too large",
                ));
            }
            return;
        };
        if let Some(claimed) = integer(given.get("total_minor"))
            && claimed != total
            && issues.is_empty()
        {
            issues.push(FieldIssue::new(
                "total_minor",
                "mismatch",
                format!("is {claimed}, but the lines add up to {total}"),
            ));
        }
        values.insert("total_minor".into(), Value::from(total));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_line_is_quantity_times_price_less_the_discount() {
        assert_eq!(line_total(3, 1299, 100), Ok(3797));
        assert!(line_total(1, 100, 101).is_err());
        assert!(line_total(i64::MAX, 2, 0).is_err());
    }

    #[test]
    fn lines_and_the_order_are_totalled_and_a_given_total_must_agree() {
        let mut values = map(json!({"contact_id": "x", "lines": [
            {"product_id": "p", "quantity": 3, "unit_price_minor": 1299, "discount_minor": 100},
            {"product_id": "q", "quantity": 1, "unit_price_minor": 500, "discount_minor": 0},
        ]}));
        let mut issues = Vec::new();
        RULES.derive(
            &map(json!({"total_minor": 4297})),
            &mut values,
            None,
            &mut issues,
        );
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(values["lines"][0]["total_minor"], 3797);
        assert_eq!(values["total_minor"], 4297);

        let mut wrong = values.clone();
        RULES.derive(
            &map(json!({"total_minor": 1})),
            &mut wrong,
            None,
            &mut issues,
        );
        assert_eq!(issues[0].field, "total_minor");
        assert_eq!(issues[0].code, "mismatch");
    }

    #[test]
    fn an_order_needs_a_customer_and_priced_lines() {
        let mut values = map(json!({"lines": [{"product_id": "p", "quantity": 1}]}));
        let mut issues = Vec::new();
        RULES.derive(&Map::new(), &mut values, None, &mut issues);
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["contact_id", "lines[0].unit_price_minor"]);
    }
}
