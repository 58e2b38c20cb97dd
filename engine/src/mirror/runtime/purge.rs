//! How far the primary may purge its mirror journal: not past what any member still
//! needs (docs/design/mirroring.md, "Journal purge").
//!
//! Invariant: a failover member always holds purges back, connected or not (it must be
//! able to catch up instead of being rebuilt); an async member does too, until it has
//! been out of touch for [`ASYNC_PURGE_HOLD`], the reference's 14 days.

use crate::journal::Position;
use crate::mirror::config::MemberType;
use std::time::Duration;

/// How long a disconnected async member keeps holding journal purges back.
pub const ASYNC_PURGE_HOLD: Duration = Duration::from_secs(14 * 24 * 3600);

/// What the primary knows of one other member.
#[derive(Debug, Clone, Copy)]
pub struct MemberNeed {
    pub member_type: MemberType,
    /// The last position the member confirmed (0: none since this primary started).
    pub has: Position,
    /// For how long it has been out of touch; `None` while connected.
    pub out_of_touch: Option<Duration>,
}

/// The lowest journal position some member still needs; 0 when none holds purges back.
pub fn floor(members: impl IntoIterator<Item = MemberNeed>) -> Position {
    members
        .into_iter()
        .filter(|m| m.member_type == MemberType::Failover || m.out_of_touch.is_none_or(|gone| gone < ASYNC_PURGE_HOLD))
        .map(|m| m.has + 1)
        .min()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(member_type: MemberType, has: Position, out_of_touch_s: Option<u64>) -> MemberNeed {
        MemberNeed { member_type, has, out_of_touch: out_of_touch_s.map(Duration::from_secs) }
    }

    #[test]
    fn the_member_furthest_behind_sets_the_floor() {
        let f = floor([need(MemberType::Failover, 900, None), need(MemberType::Dr, 400, None)]);
        assert_eq!(f, 401);
    }

    #[test]
    fn a_disconnected_failover_member_holds_purges_back_for_ever() {
        let years = Some(10 * 365 * 24 * 3600);
        assert_eq!(floor([need(MemberType::Failover, 7, years)]), 8);
    }

    #[test]
    fn an_async_stops_holding_purges_back_after_fourteen_days_away() {
        let day = 24 * 3600;
        let almost = need(MemberType::Dr, 10, Some(14 * day - 1));
        let gone = need(MemberType::ReportingRo, 10, Some(14 * day));
        assert_eq!(floor([almost, need(MemberType::Failover, 50, None)]), 11);
        assert_eq!(floor([gone, need(MemberType::Failover, 50, None)]), 51);
        assert_eq!(floor([gone]), 0, "nobody else needs anything");
    }

    #[test]
    fn a_member_not_seen_since_start_needs_everything() {
        assert_eq!(floor([need(MemberType::ReportingRw, 0, Some(1))]), 1);
    }
}
