//! The cluster file (TOML): which protocol, the timeouts, and where each party listens with
//! which certificate. Parsing checks everything that does not need the file system.

use anyhow::{bail, Result};
use musket_session::{Backend, Security};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Parties in a cluster: two compute parties and the dealer (2PC) or three (3PC).
pub const PARTIES: usize = 3;

/// Longest timeout accepted, in seconds (a week): larger values would overflow deadlines.
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// The parsed cluster file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// The protocol every party runs.
    pub protocol: Backend,
    /// The security level every party runs at (default semi-honest).
    #[serde(default)]
    pub security: Security,
    /// Seconds a party waits for a message before failing.
    #[serde(default = "ClusterFile::default_timeout")]
    pub timeout_secs: u64,
    /// Seconds to wait for every party to connect.
    #[serde(default = "ClusterFile::default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Most MiB a party holds from one peer before the protocol reads it; a peer that sends
    /// more is cut off (a flood must not exhaust memory). Default 4096.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_buffered_mb: Option<u64>,
    /// The parties, sorted by id after [`parse_cluster`].
    pub party: Vec<PartyEntry>,
}

impl ClusterFile {
    /// Default message timeout.
    pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
    /// Default connection timeout.
    pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 30;
    fn default_timeout() -> u64 {
        Self::DEFAULT_TIMEOUT_SECS
    }
    fn default_connect_timeout() -> u64 {
        Self::DEFAULT_CONNECT_TIMEOUT_SECS
    }
}

/// One party of the cluster.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyEntry {
    /// Party id: 0, 1 or 2.
    pub id: usize,
    /// Where the other parties reach this party (host:port).
    pub address: String,
    /// Where this party listens, when not `address` (0.0.0.0, NAT, a relay in front).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// PEM certificate, relative to the cluster file.
    pub certificate: PathBuf,
}

/// Parses and checks a cluster file: three parties with ids 0, 1 and 2 (returned sorted),
/// non-empty addresses and certificate paths, timeouts between 1 s and a week.
pub fn parse_cluster(text: &str) -> Result<ClusterFile> {
    let mut file: ClusterFile = toml::from_str(text)?;
    if file.party.len() != PARTIES {
        bail!(
            "the cluster file lists {} parties; Musket runs 3 (2PC: two parties and the dealer)",
            file.party.len()
        );
    }
    file.party.sort_by_key(|p| p.id);
    if file.party.iter().enumerate().any(|(i, p)| p.id != i) {
        bail!("party ids in the cluster file must be 0, 1 and 2, each once");
    }
    for p in &file.party {
        if p.address.trim().is_empty() || p.listen.as_deref().is_some_and(|l| l.trim().is_empty()) {
            bail!("party {} has an empty address", p.id);
        }
        check_address(&p.address)
            .map_err(|e| anyhow::anyhow!("party {}: address {:?}: {e}", p.id, p.address))?;
        if let Some(l) = &p.listen {
            check_address(l).map_err(|e| anyhow::anyhow!("party {}: listen address {l:?}: {e}", p.id))?;
        }
        if p.certificate.as_os_str().is_empty() {
            bail!("party {} has no certificate path", p.id);
        }
    }
    for (i, a) in file.party.iter().enumerate() {
        for b in &file.party[i + 1..] {
            if normalize_address(&a.address) == normalize_address(&b.address) {
                bail!(
                    "parties {} and {} have the same address {:?}: each party needs its own",
                    a.id,
                    b.id,
                    a.address
                );
            }
            if a.certificate == b.certificate {
                bail!(
                    "parties {} and {} name the same certificate file {}: each party needs its own",
                    a.id,
                    b.id,
                    a.certificate.display()
                );
            }
        }
    }
    for (name, t) in
        [("timeout_secs", file.timeout_secs), ("connect_timeout_secs", file.connect_timeout_secs)]
    {
        if !(1..=MAX_TIMEOUT_SECS).contains(&t) {
            bail!("{name} must be between 1 and {MAX_TIMEOUT_SECS} seconds");
        }
    }
    if file.max_buffered_mb.is_some_and(|m| !(1..=1 << 30).contains(&m)) {
        bail!("max_buffered_mb must be between 1 and 2^30");
    }
    Ok(file)
}

/// Checks a `host:port` address: a host (a name, an IPv4 address, or an IPv6 address in
/// brackets) and a port from 1 to 65535.
fn check_address(address: &str) -> Result<()> {
    let Some((host, port)) = address.rsplit_once(':') else {
        bail!("missing the port (host:port)");
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("bad host");
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        bail!("an IPv6 address must be written in brackets, as [::1]:7100");
    }
    match port.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(()),
        _ => bail!("port {port:?} is not a number from 1 to 65535"),
    }
}

/// An address as compared for duplicates: the host in lower case, `localhost` as 127.0.0.1.
fn normalize_address(address: &str) -> String {
    let a = address.trim().to_ascii_lowercase();
    match a.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
protocol = "3pc"
timeout_secs = 5
[[party]]
id = 1
address = "127.0.0.1:7101"
certificate = "party1.crt"
[[party]]
id = 0
address = "127.0.0.1:7100"
listen = "0.0.0.0:7100"
certificate = "party0.crt"
[[party]]
id = 2
address = "127.0.0.1:7102"
certificate = "party2.crt"
"#;

    #[test]
    fn a_good_file_parses_sorted_and_bad_ones_are_refused() {
        let f = parse_cluster(GOOD).unwrap();
        assert!(parse_cluster(&GOOD.replace("127.0.0.1:7102", "[::1]:7102")).is_ok());
        assert_eq!(f.party.iter().map(|p| p.id).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(f.party[0].listen.as_deref(), Some("0.0.0.0:7100"));
        assert_eq!(f.connect_timeout_secs, 30);
        for (bad, why) in [
            (GOOD.replace("id = 2", "id = 1"), "each once"),
            (GOOD.replace("timeout_secs = 5", "timeout_secs = 0"), "between 1"),
            (GOOD.replace("timeout_secs = 5", "timeout_secs = 9223372036854775807"), "between 1"),
            (GOOD.replace("\"127.0.0.1:7102\"", "\" \""), "empty address"),
            (GOOD.replace("protocol = \"3pc\"", "protocol = \"4pc\""), "4pc"),
            (GOOD.replace("timeout_secs = 5", "colour = 5"), "colour"),
            (GOOD.split("[[party]]").take(3).collect::<Vec<_>>().join("[[party]]"), "lists 2 parties"),
            (GOOD.replace("127.0.0.1:7102", "127.0.0.1:7101"), "same address"),
            (GOOD.replace("127.0.0.1:7102", "LOCALHOST:7101"), "same address"),
            (GOOD.replace("127.0.0.1:7102", "127.0.0.1:0"), "from 1 to 65535"),
            (GOOD.replace("127.0.0.1:7102", "127.0.0.1:99999"), "from 1 to 65535"),
            (GOOD.replace("127.0.0.1:7102", "127.0.0.1"), "missing the port"),
            (GOOD.replace("127.0.0.1:7102", "::1:7102"), "brackets"),
            (GOOD.replace("0.0.0.0:7100", "0.0.0.0:port"), "listen address"),
            (GOOD.replace("party2.crt", "party1.crt"), "same certificate file"),
        ] {
            let err = format!("{:#}", parse_cluster(&bad).unwrap_err());
            assert!(err.contains(why), "{err} should mention {why}");
        }
    }
}
