//! The names lab certificates carry, and what a peer's certificate proves.
//!
//! Every lab certificate carries its party's name as a DNS subject alternative name (and
//! as its common name, for people reading it):
//!
//! - a member: its member name, lower-cased (`MEMBER-A` -> `member-a`); the engine and
//!   the agent beside it both use it;
//! - the arbiter: [`ARBITER_NAME`];
//! - the installer: [`OPERATOR_NAME`].
//!
//! The arbiter's and the operator's names contain a dot, which no member name can, so no
//! member's certificate can pass for either, and neither can pass for a member.

use rustls::pki_types::{CertificateDer, ServerName};

/// The name on the arbiter's certificate.
pub const ARBITER_NAME: &str = "arbiter.mirrorlab";
/// The name on the installer's (operator's) certificate.
pub const OPERATOR_NAME: &str = "operator.mirrorlab";

/// Who a peer proved to be.
#[derive(Clone, Debug)]
pub enum Identity {
    /// This listener has no TLS: nothing is proven, and everything is allowed as without
    /// TLS (the behaviour of a lab without certificates).
    Plain,
    /// The installer's certificate: status and fault switches, not fencing, not journal
    /// ranges, not the arbiter's decisions.
    Operator,
    /// The arbiter's certificate.
    Arbiter,
    /// Another certificate of the lab CA: a member; which one, [`Identity::names_member`].
    Member(CertificateDer<'static>),
    /// TLS without a certificate (the handshake requires one, so this is only a guard).
    Anonymous,
}

impl Identity {
    /// Whether this peer may act as mirror member `member` (a JOIN under that name, the
    /// agent's member-only commands).
    pub fn names_member(&self, member: &str) -> bool {
        match self {
            Identity::Plain => true,
            Identity::Member(der) => names(der, &dns_name(member)),
            _ => false,
        }
    }

    /// Whether this peer holds a member's certificate (or TLS is off).
    pub fn is_member(&self) -> bool {
        matches!(self, Identity::Plain | Identity::Member(_))
    }

    /// Whether this peer may use the operator's commands (status, fault switches).
    pub fn is_operator_or_member(&self) -> bool {
        matches!(self, Identity::Plain | Identity::Member(_) | Identity::Operator)
    }

    /// For log lines and refusals.
    pub fn describe(&self) -> &'static str {
        match self {
            Identity::Plain => "a peer without TLS",
            Identity::Operator => "the operator's certificate",
            Identity::Arbiter => "the arbiter's certificate",
            Identity::Member(_) => "a member's certificate",
            Identity::Anonymous => "no certificate",
        }
    }
}

/// The DNS name a party's certificate carries for `name`.
pub fn dns_name(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// What the end-entity certificate `der` (already verified against the lab CA by the
/// handshake) proves.
pub fn identify(der: Option<&CertificateDer<'static>>) -> Identity {
    let Some(der) = der else { return Identity::Anonymous };
    if names(der, OPERATOR_NAME) {
        Identity::Operator
    } else if names(der, ARBITER_NAME) {
        Identity::Arbiter
    } else {
        Identity::Member(der.clone())
    }
}

/// Whether the certificate `der` is valid for `host` as clients dial it (an IP address
/// or a DNS name), as a client of a superserver or web port serving TLS checks it.
pub fn names_host(der: &CertificateDer<'_>, host: &str) -> bool {
    let Ok(name) = super::host_server_name(host) else { return false };
    let Ok(cert) = webpki::EndEntityCert::try_from(der) else { return false };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

/// Whether the certificate `der` carries the DNS name `dns`.
fn names(der: &CertificateDer<'_>, dns: &str) -> bool {
    let Ok(name) = ServerName::try_from(dns) else { return false };
    let Ok(cert) = webpki::EndEntityCert::try_from(der) else { return false };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}
