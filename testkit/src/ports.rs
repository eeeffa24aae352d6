//! Free loopback ports.

use std::net::{Ipv4Addr, TcpListener};

use crate::Error;

/// Finds a TCP port that is free on `ip` right now (binds `ip:0` and releases it).
///
/// Only loopback addresses are accepted. Another process could take the port between this
/// call and its use; on a test machine that window is tiny.
pub fn free_port(ip: Ipv4Addr) -> Result<u16, Error> {
    Ok(reserve_port(ip)?
        .local_addr()
        .map_err(|e| Error::io(format!("reading the address bound on {ip}:0"), e))?
        .port())
}

/// Binds `ip:0` and returns the listener, which keeps the port taken until it drops.
pub(crate) fn reserve_port(ip: Ipv4Addr) -> Result<TcpListener, Error> {
    if !ip.is_loopback() {
        return Err(Error::NotLoopback(ip));
    }
    TcpListener::bind((ip, 0))
        .map_err(|e| Error::io(format!("binding {ip}:0 to find a free port"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable_and_loopback_only() {
        let ip = Ipv4Addr::LOCALHOST;
        let port = free_port(ip).unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((ip, port)).unwrap();
        let other = Ipv4Addr::new(127, 0, 0, 2);
        assert_ne!(free_port(other).unwrap(), 0);
        assert!(matches!(
            free_port(Ipv4Addr::new(10, 0, 0, 1)),
            Err(Error::NotLoopback(_))
        ));
    }
}
