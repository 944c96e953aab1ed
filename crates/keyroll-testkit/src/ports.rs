//! Loopback ports for test servers, below the kernel's ephemeral range.
//!
//! A server on port 0 gets a port from the ephemeral range, the same range
//! client sockets draw from. Load tests leave thousands of client ports in
//! TIME_WAIT, and a port a test probed as free can be handed to a client (or
//! back to another test's port 0) a moment later. Servers therefore take
//! ports between [`LOWEST`] and the start of the ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), picked at random so parallel
//! test processes rarely try the same one, and checked by binding.

use std::net::{Ipv4Addr, TcpListener};
use std::ops::Range;

use rand::Rng;

/// The lowest port handed out: above the well-known and common service ports.
pub const LOWEST: u16 = 10_000;

/// The ephemeral range Linux uses when `/proc` cannot be read.
const DEFAULT_EPHEMERAL: (u16, u16) = (32_768, 60_999);

/// The kernel's ephemeral port range, `(first, last)`: read from
/// `/proc/sys/net/ipv4/ip_local_port_range`, else Linux's default
/// 32768-60999.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut numbers = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((numbers.next()??, numbers.next()??))
        })
        .filter(|(first, last)| first <= last)
        .unwrap_or(DEFAULT_EPHEMERAL)
}

/// Where server ports are picked: below the ephemeral range when it leaves
/// room above [`LOWEST`], else above it, else (a range covering nearly every
/// port) anywhere from [`LOWEST`].
fn server_ports() -> Range<u16> {
    match ephemeral_range() {
        (first, _) if first > LOWEST + 1_000 => LOWEST..first,
        (_, last) if last < u16::MAX - 1_000 => last + 1..u16::MAX,
        _ => LOWEST..u16::MAX,
    }
}

/// Binds `count` consecutive free loopback ports below the ephemeral range
/// and returns the first with the bound listeners (held: nobody else can
/// take them until they are dropped).
///
/// # Panics
/// When no such ports are found in 1000 tries.
pub fn bind_ports(count: u16) -> (u16, Vec<TcpListener>) {
    let range = server_ports();
    let mut rng = rand::rng();
    for _ in 0..1_000 {
        let first = rng.random_range(range.start..range.end.saturating_sub(count));
        let bound: Result<Vec<TcpListener>, _> = (first..first + count)
            .map(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)))
            .collect();
        if let Ok(listeners) = bound {
            return (first, listeners);
        }
    }
    panic!("no {count} free consecutive loopback port(s) in {range:?}");
}

/// A bound loopback listener below the ephemeral range, for a server in this
/// process: no window in which another process can take its port.
pub fn listener() -> TcpListener {
    let (_, mut listeners) = bind_ports(1);
    listeners.pop().expect("one listener")
}

/// The same, as a tokio listener.
pub fn tokio_listener() -> tokio::net::TcpListener {
    let listener = listener();
    listener.set_nonblocking(true).expect("a non-blocking listener");
    tokio::net::TcpListener::from_std(listener).expect("a tokio listener inside a runtime")
}

/// The first of `count` consecutive loopback ports below the ephemeral range
/// that were free a moment ago, for a server started as another process
/// (which binds them itself). Callers retry with other ports when the server
/// then fails to bind.
pub fn free_ports(count: u16) -> u16 {
    bind_ports(count).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_and_free() {
        let (first, _) = ephemeral_range();
        for _ in 0..20 {
            let port = free_ports(2);
            assert!((LOWEST..first).contains(&port) && port + 1 < first, "{port}");
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
            TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).unwrap();
        }
        let held = listener();
        let port = held.local_addr().unwrap().port();
        assert!(port < first, "{port}");
        assert!(
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err(),
            "held while the listener lives"
        );
    }
}
