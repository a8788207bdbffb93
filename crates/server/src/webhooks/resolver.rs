//! The webhook client's name resolver: it resolves a target's host itself and hands the
//! connector only the addresses the operator's [`TargetPolicy`] allows. The addresses it
//! answers are the ones connected to, on every attempt, so a name that resolved to a public
//! address when the webhook was made and to 127.0.0.1 now (DNS rebinding) is refused.
//! Address literals never reach a resolver (the connector uses them as they are): the worker
//! checks those with [`TargetPolicy::check_url`] before sending.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use rapport_domain::webhook::target::TargetPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

pub(super) struct GuardedResolver {
    pub(super) policy: Arc<TargetPolicy>,
}

/// A name with no address the policy allows. Its text is only logged, never shown to the
/// webhook's owner (the attempt says "connection failed").
#[derive(Debug)]
struct NoAllowedAddress {
    host: String,
    refused: Vec<SocketAddr>,
}

impl std::fmt::Display for NoAllowedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves only to addresses webhooks may not reach: {:?}",
            self.host,
            self.refused.iter().map(SocketAddr::ip).collect::<Vec<_>>()
        )
    }
}

impl std::error::Error for NoAllowedAddress {}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let lookup = host.clone();
            let found: Vec<SocketAddr> =
                tokio::task::spawn_blocking(move || (lookup.as_str(), 0).to_socket_addrs())
                    .await??
                    .collect();
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = found
                .into_iter()
                .partition(|addr| policy.permits(Some(&host), addr.ip()));
            if allowed.is_empty() {
                return Err(Box::new(NoAllowedAddress { host, refused }).into());
            }
            if !refused.is_empty() {
                tracing::warn!(
                    host,
                    refused = ?refused.iter().map(SocketAddr::ip).collect::<Vec<_>>(),
                    "webhook target resolves to addresses it may not reach as well; skipping those"
                );
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}
