//! The route table plus the addresses of its targets, swapped as a whole when the routes file changes.
//!
//! Name resolution is blocking, so it never runs on a worker: the control thread resolves every host name when
//! it builds a `Router` (at start-up, on reload, and periodically), and workers only look addresses up here.
//! A host that does not resolve has no addresses; requests to it fail over or answer 502, and the log says why.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use super::config::ProxyConfig;
use crate::grip::{parse_key, SigKey};
use crate::routes::{Route, RouteQuery, RouteTable, TargetKind};

#[derive(Debug, Default)]
pub struct Router {
    table: RouteTable,
    addrs: HashMap<(String, u16), Vec<SocketAddr>>,
    /// Per-route Grip-Sig settings, by route index: `Some` when the route sets `sig_key` or `sig_iss`.
    route_sigs: Vec<Option<RouteSig>>,
}

#[derive(Debug)]
struct RouteSig {
    iss: Option<String>,
    key: Option<SigKey>,
}

impl Router {
    /// Build a router, resolving every `host:port` target. Returns also one warning per host that did not resolve.
    /// A route whose `sig_key` can't be used is an error naming its line.
    pub fn new(table: RouteTable) -> Result<(Router, Vec<String>), String> {
        let mut addrs = HashMap::new();
        let mut warnings = Vec::new();
        let mut route_sigs = Vec::with_capacity(table.len());
        for route in table.routes() {
            let key = match &route.sig_key {
                Some(k) => Some(
                    parse_key(k)
                        .map_err(|e| format!("routes: line {}: sig_key: {e}", route.line))?,
                ),
                None => None,
            };
            route_sigs.push(if key.is_some() || route.sig_iss.is_some() {
                Some(RouteSig {
                    iss: route.sig_iss.clone(),
                    key,
                })
            } else {
                None
            });
        }
        for route in table.routes() {
            for target in &route.targets {
                if let TargetKind::Http { host, port } = &target.kind {
                    let key = (host.clone(), *port);
                    if addrs.contains_key(&key) {
                        continue;
                    }
                    match resolve(host, *port) {
                        Ok(list) => {
                            addrs.insert(key, list);
                        }
                        Err(e) => {
                            warnings.push(format!(
                                "routes: line {}: cannot resolve {}:{}: {}",
                                route.line, host, port, e
                            ));
                            addrs.insert(key, Vec::new());
                        }
                    }
                }
            }
        }
        Ok((
            Router {
                table,
                addrs,
                route_sigs,
            },
            warnings,
        ))
    }

    pub fn select(&self, q: &RouteQuery) -> Option<&Route> {
        self.table.select(q)
    }

    /// The Grip-Sig issuer and key for a route: its own `sig_iss`/`sig_key` where set, else the global ones.
    pub fn signing<'a>(
        &'a self,
        route_idx: usize,
        cfg: &'a ProxyConfig,
    ) -> Option<(&'a str, &'a SigKey)> {
        let global = cfg.sig.as_ref();
        match self.route_sigs.get(route_idx).and_then(|s| s.as_ref()) {
            None => global.map(|(iss, key)| (iss.as_str(), key)),
            Some(rs) => {
                let key = rs.key.as_ref().or(global.map(|(_, k)| k))?;
                let iss = rs
                    .iss
                    .as_deref()
                    .or(global.map(|(i, _)| i.as_str()))
                    .unwrap_or("pushpin");
                Some((iss, key))
            }
        }
    }

    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// Addresses of a target host, as last resolved.
    pub fn addrs(&self, host: &str, port: u16) -> &[SocketAddr] {
        self.addrs
            .get(&(host.to_string(), port))
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }

    /// Whether resolving again gives different addresses (the control thread then swaps in a new router).
    pub fn addresses_changed(&self) -> bool {
        self.addrs.iter().any(|((host, port), old)| {
            host.parse::<IpAddr>().is_err()
                && resolve(host, *port).map(|new| &new != old).unwrap_or(false)
        })
    }
}

fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let list: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if list.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no addresses",
        ));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_localhost_targets_resolve() {
        let (table, _) = RouteTable::parse("* 127.0.0.1:8080 localhost:9\n", "routes").unwrap();
        let (router, warnings) = Router::new(table).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            router.addrs("127.0.0.1", 8080),
            &["127.0.0.1:8080".parse().unwrap()]
        );
        assert!(!router.addrs("localhost", 9).is_empty());
        assert!(router.addrs("nowhere", 1).is_empty());
    }

    #[test]
    fn unresolvable_host_is_a_warning_not_an_error() {
        let (table, _) = RouteTable::parse("* no-such-host.invalid:80\n", "routes").unwrap();
        let (router, warnings) = Router::new(table).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("no-such-host.invalid:80"),
            "{}",
            warnings[0]
        );
        assert!(router.addrs("no-such-host.invalid", 80).is_empty());
    }
}
