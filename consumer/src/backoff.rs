//! Capped exponential backoff with jitter, for transient failures: 100 ms, 200 ms, 400 ms, ... up to
//! 30 s, each delay jittered by up to a quarter so that restarted workers do not retry in lockstep.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(30))
    }
}

impl Backoff {
    /// 100 ms, doubling up to `cap`: the runtime's retries.
    pub fn up_to(cap: Duration) -> Self {
        Self::new(Duration::from_millis(100), cap)
    }

    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            attempt: 0,
            base,
            cap,
        }
    }

    /// The next delay; grows until the cap.
    pub fn next_delay(&mut self) -> Duration {
        let exponential = self.base.saturating_mul(1u32 << self.attempt.min(20));
        self.attempt = self.attempt.saturating_add(1);
        let delay = exponential.min(self.cap);
        let jitter_range = delay.as_millis() as u64 / 4;
        let jitter = if jitter_range == 0 {
            0
        } else {
            uuid::Uuid::new_v4().as_u128() as u64 % jitter_range
        };
        delay.saturating_sub(Duration::from_millis(jitter))
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_stays_under_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<_> = (0..10).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] <= Duration::from_millis(100) && delays[0] >= Duration::from_millis(75));
        assert!(delays[3] >= Duration::from_millis(600) && delays[3] <= Duration::from_millis(800));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        assert!(delays[9] >= Duration::from_millis(1500));
        assert_eq!(backoff.attempts(), 10);
    }
}
