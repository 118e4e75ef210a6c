//! How long a client may take over each step of a connection, and how many connections may be
//! open at once: the bounds that keep slow clients from holding the server's connections.

use std::time::Duration;

use anyhow::bail;

/// The bounds every adapter enforces on its connections (docs/security.md, "Slow clients").
/// Every duration must be above zero and at most [`ConnectionLimits::MAX_TIMEOUT`]
/// ([`ConnectionLimits::check`]): zero does not mean "off".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request's headers must be complete within this long: counted from the accept for a
    /// connection's first request, and from the first byte of the next request on a kept-alive
    /// connection. Past it, the connection is closed (actix answers 408 on a first request).
    pub header_timeout: Duration,
    /// A request's body must be complete within this long of its headers; past it the request
    /// is answered 408 and the connection closed.
    pub body_timeout: Duration,
    /// A kept-alive connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
    /// Connections open at once. At the limit the server stops accepting: new connections wait
    /// in the kernel's listen queue until one closes (on actix, one accepted in the instant
    /// before accepting paused is closed at once).
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The default header timeout: 10 s.
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default body timeout: 30 s.
    pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
    /// The default idle timeout: 60 s.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// The default connection limit: 10,000.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

    /// The longest timeout accepted: a day. Longer ones would hold connections as if there
    /// were none (and deadlines that far would overflow the clock).
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

    /// Fails unless every timeout is above zero and at most [`Self::MAX_TIMEOUT`], and at
    /// least one connection is allowed.
    pub fn check(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("header timeout", self.header_timeout),
            ("body timeout", self.body_timeout),
            ("idle timeout", self.idle_timeout),
        ] {
            if value.is_zero() || value > Self::MAX_TIMEOUT {
                bail!(
                    "the {name} must be above zero and at most {} s, not {value:?}",
                    Self::MAX_TIMEOUT.as_secs()
                );
            }
        }
        if self.max_connections == 0 {
            bail!("the connection limit must be at least 1");
        }
        Ok(())
    }
}

impl Default for ConnectionLimits {
    /// 10 s for headers, 30 s for a body, 60 s idle, 10,000 connections.
    fn default() -> Self {
        Self {
            header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
            body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_the_check() {
        assert!(ConnectionLimits::default().check().is_ok());
    }

    #[test]
    fn zero_or_overlong_timeouts_and_no_connections_are_refused() {
        let defaults = ConnectionLimits::default();
        let refused = [
            ConnectionLimits {
                header_timeout: Duration::ZERO,
                ..defaults
            },
            ConnectionLimits {
                body_timeout: ConnectionLimits::MAX_TIMEOUT + Duration::from_secs(1),
                ..defaults
            },
            ConnectionLimits {
                idle_timeout: Duration::MAX,
                ..defaults
            },
            ConnectionLimits {
                max_connections: 0,
                ..defaults
            },
        ];
        for limits in refused {
            assert!(limits.check().is_err(), "{limits:?} passed the check");
        }
    }
}
