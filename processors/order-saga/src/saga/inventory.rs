//! The inventory service's answers, re-keyed by order: the lines.

use super::*;

impl Transition<'_> {
    pub(super) fn reserved(&mut self, e: &InventoryReserved) -> Result<(), Rejection> {
        let phase = self.s.phase;
        let line = self.line(&e.reservation_id, &e.product_id, e.quantity)?;
        match (phase, line.status) {
            // Row 3 / 4.
            (Phase::Reserving, LineStatus::Requested) => {
                line.status = LineStatus::Reserved;
                if self.s.lines.iter().all(|l| l.status == LineStatus::Reserved) {
                    self.validated();
                }
            }
            // Row 14: the order closed while this reservation was on its way.
            (p, LineStatus::Requested) if p.is_closed() => {
                line.status = LineStatus::Reserved;
                self.release_held("order_closed");
            }
            // Row 20: already known.
            (_, LineStatus::Reserved | LineStatus::ReleaseRequested | LineStatus::Released | LineStatus::Consumed) => {}
            (_, LineStatus::Failed) => {
                return Err(
                    Class::ConflictingFact.reject(format!("reservation {} was refused before", e.reservation_id))
                )
            }
            _ => return Err(self.invalid("inventory.reserved")),
        }
        Ok(())
    }

    pub(super) fn reservation_failed(&mut self, e: &InventoryReservationFailed) -> Result<(), Rejection> {
        let phase = self.s.phase;
        let line = self.line(&e.reservation_id, &e.product_id, e.quantity)?;
        match (phase, line.status) {
            // Row 5.
            (Phase::Reserving, LineStatus::Requested) => {
                line.status = LineStatus::Failed;
                self.release_held("out_of_stock");
                self.cancel("out_of_stock", "system");
            }
            // Row 16.
            (p, LineStatus::Requested) if p.is_closed() => line.status = LineStatus::Failed,
            // Row 20.
            (_, LineStatus::Failed) => {}
            (_, status) => {
                return Err(Class::ConflictingFact
                    .reject(format!("reservation {} refused, but it is {status:?}", e.reservation_id)))
            }
        }
        Ok(())
    }

    pub(super) fn released(&mut self, e: &InventoryReleased) -> Result<(), Rejection> {
        let line = self.line(&e.reservation_id, &e.product_id, e.quantity)?;
        match line.status {
            // Row 15.
            LineStatus::ReleaseRequested => line.status = LineStatus::Released,
            LineStatus::Released => {}
            status => {
                return Err(Class::ConflictingFact
                    .reject(format!("reservation {} released without a request (it is {status:?})", e.reservation_id)))
            }
        }
        Ok(())
    }
}
