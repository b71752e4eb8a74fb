//! The inventory projector (docs/inventory.md): per product and location,
//! the on-hand quantity, the reserved quantity and what is available, kept
//! from `inventory.updated`, `adjusted`, `reserved` and `released` on
//! `inventory.events`. It emits `inventory.low_stock` when availability
//! crosses a threshold downward and `product.out_of_stock` when it reaches
//! zero, and refuses (DLQ) any fact that would make availability negative.

pub mod cli;

use sagastream_contract::payloads::inventory::{AlertLevel, InventoryLowStock, ProductOutOfStock};
use sagastream_contract::{Event, Payload};
use sagastream_runtime::{Context, Emit, Outcome, Processor, Rejection, RejectionClass, Spec, Step};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "inventory";

sagastream_runtime::rejection_classes! {
    /// DLQ classes.
    pub enum Class {
        /// A reservation or an adjustment would take more than is available.
        NegativeAvailable = "negative_available",
        /// A release of more than is reserved.
        OverRelease = "over_release",
        /// A snapshot whose available quantity is not quantity - reserved.
        InconsistentSnapshot = "inconsistent_snapshot",
        /// A fact for a location whose stock was never set.
        UnknownLocation = "unknown_location",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// `warning` alert when availability falls below this.
    pub warning: u32,
    /// `critical` alert when availability falls below this (lower).
    pub critical: u32,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        // The seed's example: 8 available against a threshold of 10 is a warning.
        Thresholds { warning: 10, critical: 3 }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub thresholds: Thresholds,
}

/// Stock of one product at one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    pub location_id: Box<str>,
    /// On hand, reserved units included.
    pub quantity: u32,
    pub reserved: u32,
}

impl Stock {
    pub fn available(&self) -> u32 {
        self.quantity.saturating_sub(self.reserved)
    }
}

/// Every location of one product (the key).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Product {
    pub locations: Vec<Stock>,
}

impl Product {
    pub fn at(&self, location: &str) -> Option<&Stock> {
        self.locations.iter().find(|s| &*s.location_id == location)
    }

    fn at_mut(&mut self, location: &str) -> Result<&mut Stock, Rejection> {
        self.locations.iter_mut().find(|s| &*s.location_id == location).ok_or_else(|| {
            Class::UnknownLocation
                .reject(format!("no stock was ever set at {location} (expected an inventory.updated first)"))
        })
    }
}

impl Processor for Inventory {
    type State = Product;

    fn spec(&self) -> Spec {
        Spec {
            name: NAME,
            version: env!("CARGO_PKG_VERSION"),
            inputs: vec!["inventory.events"],
            outputs: vec!["inventory.events"],
            changelog: Some("inventory.projector.changelog"),
            dlq: "inventory.projector.dlq",
            repartitions: Vec::new(),
        }
    }

    fn process(&self, state: Option<&Product>, event: &Event, ctx: &Context<'_>) -> Outcome<Product> {
        let mut p = state.cloned().unwrap_or_default();
        let location = match &event.data {
            Payload::InventoryUpdated(e) => {
                if e.available_quantity != e.quantity.saturating_sub(e.reserved_quantity)
                    || e.reserved_quantity > e.quantity
                {
                    return Err(Class::InconsistentSnapshot.reject(format!(
                        "quantity {} with {} reserved cannot leave {} available",
                        e.quantity, e.reserved_quantity, e.available_quantity
                    )));
                }
                match p.locations.iter_mut().find(|s| *s.location_id == *e.location_id) {
                    Some(s) => {
                        s.quantity = e.quantity;
                        s.reserved = e.reserved_quantity;
                    }
                    None => p.locations.push(Stock {
                        location_id: e.location_id.as_str().into(),
                        quantity: e.quantity,
                        reserved: e.reserved_quantity,
                    }),
                }
                &e.location_id
            }
            Payload::InventoryAdjusted(e) => {
                let s = p.at_mut(&e.location_id)?;
                if e.new_quantity < s.reserved {
                    return Err(Class::NegativeAvailable.reject(format!(
                        "adjusting to {} below the {} reserved at {}",
                        e.new_quantity, s.reserved, e.location_id
                    )));
                }
                // The new quantity is authoritative; `old_quantity` is informative.
                s.quantity = e.new_quantity;
                &e.location_id
            }
            Payload::InventoryReserved(e) => {
                let s = p.at_mut(&e.location_id)?;
                if e.quantity > s.available() {
                    return Err(Class::NegativeAvailable.reject(format!(
                        "reserving {} with {} available at {}",
                        e.quantity,
                        s.available(),
                        e.location_id
                    )));
                }
                s.reserved += e.quantity;
                &e.location_id
            }
            Payload::InventoryReleased(e) => {
                let s = p.at_mut(&e.location_id)?;
                if e.quantity > s.reserved {
                    return Err(Class::OverRelease.reject(format!(
                        "releasing {} with {} reserved at {}",
                        e.quantity, s.reserved, e.location_id
                    )));
                }
                s.reserved -= e.quantity;
                &e.location_id
            }
            // Our own alerts (skipped by the runtime) and reservation refusals.
            _ => return Ok(Step::keep()),
        };
        let before = state.and_then(|p| p.at(location)).map(Stock::available);
        let after = p.at(location).map_or(0, Stock::available);
        let mut step = Step::set(p);
        for emit in self.alerts(ctx.key, location, before, after) {
            step = step.push(emit);
        }
        Ok(step)
    }
}

impl Inventory {
    /// Alerts for a change of availability from `before` (unknown for a
    /// location seen for the first time: no crossing) to `after`.
    fn alerts(&self, product: &str, location: &str, before: Option<u32>, after: u32) -> Vec<Emit> {
        let Some(before) = before else { return Vec::new() };
        let mut out = Vec::new();
        let t = self.thresholds;
        for (threshold, level) in [(t.warning, AlertLevel::Warning), (t.critical, AlertLevel::Critical)] {
            if before >= threshold && after < threshold {
                out.push(Emit::new(InventoryLowStock {
                    product_id: product.to_owned(),
                    location_id: location.to_owned(),
                    current_quantity: after,
                    threshold,
                    alert_level: level,
                }));
            }
        }
        if before > 0 && after == 0 {
            out.push(Emit::new(ProductOutOfStock {
                product_id: product.to_owned(),
                last_stock_level: 0,
                location_id: location.to_owned(),
            }));
        }
        out
    }
}

#[cfg(test)]
mod tests;
