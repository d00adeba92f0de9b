//! Per-client rate limiting: a token bucket per client address (GCRA, from `governor`), kept in
//! memory with a bound on how many clients are tracked.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{Quota, RateLimiter};

use crate::error::ApiError;

/// Clients tracked at most; idle ones are forgotten first.
const MAX_CLIENTS: usize = 10_000;

/// Requests per minute and burst size for one client.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

pub struct ClientLimiter {
    limiter:
        RateLimiter<IpAddr, governor::state::keyed::DefaultKeyedStateStore<IpAddr>, DefaultClock>,
    clock: DefaultClock,
}

impl ClientLimiter {
    pub fn new(limit: RateLimit) -> ClientLimiter {
        let quota = Quota::per_minute(limit.per_minute).allow_burst(limit.burst);
        ClientLimiter {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from `client`'s bucket, or says how long to wait.
    pub fn check(&self, client: IpAddr) -> Result<(), ApiError> {
        if self.limiter.len() >= MAX_CLIENTS {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            if self.limiter.len() >= MAX_CLIENTS {
                // Tracking more clients would let a flood of addresses exhaust memory.
                return Err(ApiError::rate_limited(Duration::from_secs(60)));
            }
        }
        self.limiter
            .check_key(&client)
            .map_err(|not_until| ApiError::rate_limited(not_until.wait_time_from(self.clock.now())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_its_burst_waits_and_others_do_not() {
        let limiter = ClientLimiter::new(RateLimit {
            per_minute: NonZeroU32::new(6).unwrap(),
            burst: NonZeroU32::new(2).unwrap(),
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_ok());
        let refused = limiter.check(a).unwrap_err();
        assert_eq!(refused.status, 429);
        let wait = refused.retry_after.unwrap();
        assert!(
            wait > Duration::from_secs(5) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert!(limiter.check(b).is_ok());
    }
}
