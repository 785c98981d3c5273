//! The time-dependent decisions, as small pure functions: when to extend a message's
//! visibility and by how much, how long a retried message waits, when task protection is due,
//! and how long to long-poll before an idle exit.
//!
//! Times are [`Instant`]s; a message's `received` instant is taken *before* the ReceiveMessage
//! call, so it is never later than SQS's own receipt and every deadline computed from it errs
//! on the early side.

use std::time::Duration;

use tokio::time::Instant;

/// SQS keeps a message invisible at most 12 hours after it was received.
pub const MAX_INVISIBLE: Duration = Duration::from_secs(12 * 60 * 60);

/// The least time between two heartbeats of one message, so failures do not spin.
pub const MIN_HEARTBEAT_GAP: Duration = Duration::from_millis(200);

/// The least an extension must push the deadline out to be worth a call (or a quarter of
/// the visibility timeout, when that is shorter).
const MIN_GAIN: Duration = Duration::from_secs(1);

/// When to extend the visibility of a message whose window ends at `visible_at`: halfway
/// through what is left of the window, so a failed call still leaves time for another.
pub fn next_heartbeat(now: Instant, visible_at: Instant) -> Instant {
    let left = visible_at.saturating_duration_since(now);
    now + (left / 2).max(MIN_HEARTBEAT_GAP)
}

/// The visibility timeout to set at `now` for a message received at `received` whose window
/// ends at `visible_at`: `visibility` from now, in whole seconds, capped so that the message
/// is visible again no later than 12 hours after its receipt. `None` when the cap leaves
/// nothing worth extending (the message will be delivered again at the 12-hour mark).
pub fn extension(
    now: Instant,
    received: Instant,
    visible_at: Instant,
    visibility: Duration,
) -> Option<Duration> {
    let left = MAX_INVISIBLE.saturating_sub(now.saturating_duration_since(received));
    let timeout = Duration::from_secs(visibility.min(left).as_secs());
    let gains = now + timeout >= visible_at + MIN_GAIN.min(visibility / 4);
    (!timeout.is_zero() && gains).then_some(timeout)
}

/// The visibility timeout that makes a failed message visible again after `retry_delay`,
/// capped by the 12 hours since its receipt.
pub fn retry_visibility(now: Instant, received: Instant, retry_delay: Duration) -> Duration {
    let left = MAX_INVISIBLE.saturating_sub(now.saturating_duration_since(received));
    Duration::from_secs(retry_delay.min(left).as_secs())
}

/// What to ask the ECS agent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectionStep {
    /// Enable protection, or renew it before it lapses.
    Enable,
    /// Release it: nothing is in hand.
    Disable,
    /// Nothing to do now.
    Keep,
}

/// Task protection: `wanted` while a message is in hand; `held_until` is when the protection
/// granted last will lapse (`None`: not held). Renewed once less than half of `expiry` is left.
pub fn protection_step(
    wanted: bool,
    held_until: Option<Instant>,
    now: Instant,
    expiry: Duration,
) -> ProtectionStep {
    match (wanted, held_until) {
        (true, None) => ProtectionStep::Enable,
        (true, Some(until)) if until.saturating_duration_since(now) <= expiry / 2 => {
            ProtectionStep::Enable
        }
        (true, Some(_)) => ProtectionStep::Keep,
        (false, Some(_)) => ProtectionStep::Disable,
        (false, None) => ProtectionStep::Keep,
    }
}

/// When protection that lapses at `held_until` is due for renewal.
pub fn protection_renewal(held_until: Instant, expiry: Duration) -> Instant {
    held_until.checked_sub(expiry / 2).unwrap_or(held_until)
}

/// The long-poll wait for the next receive: `wait`, shortened when idle so the worker exits
/// about when `idle_exit` has passed since `idle_since`. `None` when it is time to exit.
pub fn poll_wait(
    now: Instant,
    idle_since: Option<Instant>,
    idle_exit: Option<Duration>,
    wait: Duration,
) -> Option<Duration> {
    let (Some(since), Some(limit)) = (idle_since, idle_exit) else {
        return Some(wait);
    };
    let left = limit.saturating_sub(now.saturating_duration_since(since));
    if left.is_zero() {
        return None;
    }
    // Whole seconds (SQS's unit), rounded up so the worker polls until the limit has passed.
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    Some(Duration::from_secs(secs).min(wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn heartbeat_comes_halfway_through_what_is_left() {
        let t0 = Instant::now();
        assert_eq!(next_heartbeat(t0, t0 + s(30)), t0 + s(15));
        assert_eq!(next_heartbeat(t0 + s(15), t0 + s(45)), t0 + s(30));
        // Late (the window already ended): at once, but not in a tight loop.
        assert_eq!(
            next_heartbeat(t0 + s(40), t0 + s(30)),
            t0 + s(40) + MIN_HEARTBEAT_GAP
        );
    }

    #[test]
    fn heartbeats_keep_a_message_invisible_for_three_windows() {
        // Simulate a 2 s visibility timeout and a 6 s job: every heartbeat lands before the
        // window ends, and the message never becomes visible.
        let received = Instant::now();
        let visibility = s(2);
        let mut visible_at = received + visibility;
        let mut now = received;
        let mut beats = 0;
        while now < received + s(6) {
            now = next_heartbeat(now, visible_at);
            assert!(now < visible_at, "heartbeat after the window ended");
            let timeout = extension(now, received, visible_at, visibility).unwrap();
            visible_at = now + timeout;
            beats += 1;
        }
        assert!((5..=7).contains(&beats), "{beats} heartbeats");
    }

    #[test]
    fn extension_is_the_visibility_timeout_from_now() {
        let t0 = Instant::now();
        assert_eq!(extension(t0 + s(15), t0, t0 + s(30), s(30)), Some(s(30)));
    }

    #[test]
    fn extension_never_reaches_past_twelve_hours_after_receipt() {
        let t0 = Instant::now();
        let near_end = t0 + MAX_INVISIBLE - s(20);
        // 30 s asked, 20 s left under the cap.
        assert_eq!(extension(near_end, t0, near_end + s(5), s(30)), Some(s(20)));
        // The deadline already sits at the cap: nothing left to gain.
        assert_eq!(extension(near_end, t0, t0 + MAX_INVISIBLE, s(30)), None);
        assert_eq!(extension(t0 + MAX_INVISIBLE + s(1), t0, t0, s(30)), None);
        // Fractions of a second left are dropped: SQS would reject the rounded-up value.
        let t = t0 + MAX_INVISIBLE - Duration::from_millis(10_500);
        assert_eq!(extension(t, t0, t, s(30)), Some(s(10)));
    }

    #[test]
    fn extension_that_gains_less_than_a_second_is_skipped() {
        let t0 = Instant::now();
        assert_eq!(
            extension(
                t0 + s(1),
                t0,
                t0 + s(30) + Duration::from_millis(500),
                s(30)
            ),
            None
        );
        assert_eq!(
            extension(
                t0 + s(2),
                t0,
                t0 + s(30) + Duration::from_millis(500),
                s(30)
            ),
            Some(s(30))
        );
    }

    #[test]
    fn a_one_second_visibility_timeout_still_gets_heartbeats() {
        let t0 = Instant::now();
        let beat = next_heartbeat(t0, t0 + s(1));
        assert_eq!(extension(beat, t0, t0 + s(1), s(1)), Some(s(1)));
    }

    #[test]
    fn retry_delay_is_capped_by_the_twelve_hours() {
        let t0 = Instant::now();
        assert_eq!(retry_visibility(t0 + s(5), t0, s(10)), s(10));
        assert_eq!(retry_visibility(t0 + MAX_INVISIBLE - s(3), t0, s(10)), s(3));
        assert_eq!(retry_visibility(t0 + MAX_INVISIBLE + s(3), t0, s(10)), s(0));
    }

    #[test]
    fn protection_is_enabled_renewed_and_released() {
        let t0 = Instant::now();
        let expiry = s(15 * 60);
        assert_eq!(
            protection_step(true, None, t0, expiry),
            ProtectionStep::Enable
        );
        let held = Some(t0 + expiry);
        assert_eq!(
            protection_step(true, held, t0 + s(60), expiry),
            ProtectionStep::Keep
        );
        // Renewed once half the expiry is gone, well before it lapses.
        assert_eq!(
            protection_step(true, held, t0 + s(449), expiry),
            ProtectionStep::Keep
        );
        assert_eq!(
            protection_step(true, held, t0 + s(450), expiry),
            ProtectionStep::Enable
        );
        assert_eq!(
            protection_step(true, held, t0 + s(2000), expiry),
            ProtectionStep::Enable
        );
        assert_eq!(
            protection_step(false, held, t0 + s(1), expiry),
            ProtectionStep::Disable
        );
        assert_eq!(
            protection_step(false, None, t0, expiry),
            ProtectionStep::Keep
        );
        assert_eq!(protection_renewal(t0 + expiry, expiry), t0 + s(450));
    }

    #[test]
    fn idle_polls_end_about_when_the_idle_limit_passes() {
        let t0 = Instant::now();
        let wait = s(20);
        assert_eq!(poll_wait(t0, None, Some(s(5)), wait), Some(wait));
        assert_eq!(poll_wait(t0, Some(t0), None, wait), Some(wait));
        assert_eq!(poll_wait(t0, Some(t0), Some(s(60)), wait), Some(wait));
        assert_eq!(poll_wait(t0 + s(2), Some(t0), Some(s(5)), wait), Some(s(3)));
        assert_eq!(
            poll_wait(t0 + Duration::from_millis(2500), Some(t0), Some(s(5)), wait),
            Some(s(3))
        );
        assert_eq!(poll_wait(t0 + s(5), Some(t0), Some(s(5)), wait), None);
    }
}
