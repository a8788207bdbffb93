//! Orders' vocabulary: their statuses, and what a line comes to. (The declaration and its
//! rules are `objects::order`.)

use serde::{Deserialize, Serialize};

macro_rules! order_statuses {
    ($($variant:ident => $text:literal),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum OrderStatus { $($variant,)* }

        impl OrderStatus {
            /// The names of the statuses, as bodies and queries write them.
            pub const NAMES: &'static [&'static str] = &[$($text,)*];
        }

        impl OrderStatus {
            pub fn as_str(self) -> &'static str {
                match self { $(OrderStatus::$variant => $text,)* }
            }
        }

        impl std::str::FromStr for OrderStatus {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok(OrderStatus::$variant),)*
                    _ => Err(format!("`{s}` is not an order status")),
                }
            }
        }
    };
}

order_statuses! {
    Pending => "pending",
    Paid => "paid",
    Fulfilled => "fulfilled",
    Cancelled => "cancelled",
    Refunded => "refunded",
}

impl OrderStatus {
    /// Paid and fulfilled orders are purchases in every aggregate; the others are not.
    pub fn is_purchase(self) -> bool {
        matches!(self, OrderStatus::Paid | OrderStatus::Fulfilled)
    }
}

/// `quantity × unit_price − discount`, or why not.
pub fn line_total(
    quantity: i64,
    unit_price_minor: i64,
    discount_minor: i64,
) -> Result<i64, &'static str> {
    let gross = quantity
        .checked_mul(unit_price_minor)
        .ok_or("the line's amount is too large")?;
    let total = gross
        .checked_sub(discount_minor)
        .ok_or("the line's amount is too large")?;
    if total < 0 {
        return Err("the discount is larger than the line's amount");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_quantity_times_price_less_the_discount() {
        assert_eq!(line_total(3, 1299, 100), Ok(3797));
        assert!(line_total(1, 100, 101).is_err());
        assert!(line_total(i64::MAX, 2, 0).is_err());
    }

    #[test]
    fn only_paid_and_fulfilled_orders_are_purchases() {
        assert!(OrderStatus::Paid.is_purchase() && OrderStatus::Fulfilled.is_purchase());
        assert!(
            !OrderStatus::Pending.is_purchase()
                && !OrderStatus::Refunded.is_purchase()
                && !OrderStatus::Cancelled.is_purchase()
        );
    }
}
