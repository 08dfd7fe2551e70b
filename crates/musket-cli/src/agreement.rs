//! Before any protocol message, the parties of a cluster check that they run the same thing:
//! the same Musket version, the same cluster (protocol, addresses, certificates) and the same
//! job with the same public parameters. A mismatch (two operators editing their cluster files
//! differently, one party started with another command) fails at once with a message that
//! says what differs, instead of a confusing protocol error later.

use anyhow::{bail, Context, Result};
use musket_net::{TlsTransport, Transport};
use serde::{Deserialize, Serialize};

/// What a party runs, as told to its peers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct JobDescriptor {
    /// The binary's version.
    pub(crate) version: String,
    /// `2pc` or `3pc`.
    pub(crate) protocol: String,
    /// SHA-256 of the shared part of the cluster file (protocol, each party's id, address and
    /// certificate), in hex; local settings (listen address, timeouts, buffer cap) are not part
    /// of it.
    pub(crate) cluster: String,
    /// The subcommand.
    pub(crate) command: String,
    /// Its public parameters, as `name=value` pairs.
    pub(crate) params: Vec<String>,
}

impl JobDescriptor {
    fn job(&self) -> String {
        if self.params.is_empty() {
            format!("`{}`", self.command)
        } else {
            format!("`{} {}`", self.command, self.params.join(" "))
        }
    }
}

/// The cluster digest of [`JobDescriptor::cluster`].
pub(crate) fn cluster_digest(protocol: &str, parties: &[(usize, String, Vec<u8>)]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"musket cluster v1\0");
    ctx.update(protocol.as_bytes());
    for (id, address, cert) in parties {
        ctx.update(&(*id as u64).to_le_bytes());
        ctx.update(&(address.len() as u64).to_le_bytes());
        ctx.update(address.as_bytes());
        ctx.update(&(cert.len() as u64).to_le_bytes());
        ctx.update(cert);
    }
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Largest descriptor accepted from a peer.
const MAX_DESCRIPTOR: usize = 4096;

/// Sends this party's descriptor to every peer and checks theirs; the first difference is an
/// error naming the peer and what differs. No abort is sent: every party receives every
/// descriptor and finds the difference from its own side (an abort could overtake a
/// descriptor and make a peer report this party's view instead of its own).
pub(crate) fn agree(
    transport: &mut TlsTransport,
    me: usize,
    parties: usize,
    mine: &JobDescriptor,
) -> Result<()> {
    let bytes = serde_json::to_vec(mine)?;
    for peer in (0..parties).filter(|&p| p != me) {
        transport.send(peer, bytes.clone())?;
    }
    for peer in (0..parties).filter(|&p| p != me) {
        let got = transport.recv(peer)?;
        check(peer, &got, mine)?;
    }
    Ok(())
}

fn check(peer: usize, got: &[u8], mine: &JobDescriptor) -> Result<()> {
    if got.len() > MAX_DESCRIPTOR {
        bail!("party {peer} sent a job description of {} bytes", got.len());
    }
    let theirs: JobDescriptor = serde_json::from_slice(got).with_context(|| {
        format!("party {peer} sent a malformed job description (another Musket version?)")
    })?;
    if theirs.version != mine.version {
        bail!(
            "party {peer} runs Musket {}, this party {}: every party needs the same version",
            theirs.version,
            mine.version
        );
    }
    if theirs.protocol != mine.protocol {
        bail!(
            "party {peer}'s cluster file says protocol {}, this party's says {}: every party needs the same cluster file",
            theirs.protocol,
            mine.protocol
        );
    }
    if theirs.cluster != mine.cluster {
        bail!(
            "party {peer}'s cluster file differs from this party's (the parties' addresses or certificates): \
             every party needs the same cluster file"
        );
    }
    if theirs.command != mine.command || theirs.params != mine.params {
        bail!(
            "party {peer} runs {}, this party runs {}: every party must run the same job with the same options",
            theirs.job(),
            mine.job()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(command: &str, params: &[&str]) -> JobDescriptor {
        JobDescriptor {
            version: "0.1.0".into(),
            protocol: "3pc".into(),
            cluster: cluster_digest("3pc", &[(0, "a:1".into(), vec![1, 2])]),
            command: command.into(),
            params: params.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn every_difference_is_named() {
        let mine = job("infer", &["batch_slice=auto"]);
        let ok = serde_json::to_vec(&mine).unwrap();
        check(2, &ok, &mine).unwrap();
        let cases = [
            (JobDescriptor { version: "9".into(), ..mine.clone() }, "runs Musket 9"),
            (JobDescriptor { protocol: "2pc".into(), ..mine.clone() }, "says protocol 2pc"),
            (
                JobDescriptor {
                    cluster: cluster_digest("3pc", &[(0, "a:2".into(), vec![1, 2])]),
                    ..mine.clone()
                },
                "cluster file differs",
            ),
            (
                job("millionaires", &[]),
                "party 2 runs `millionaires`, this party runs `infer batch_slice=auto`",
            ),
            (job("infer", &["batch_slice=8"]), "same options"),
        ];
        for (theirs, want) in cases {
            let err = check(2, &serde_json::to_vec(&theirs).unwrap(), &mine).unwrap_err();
            assert!(format!("{err:#}").contains(want), "{err:#} should say {want}");
        }
        assert!(check(1, &vec![b' '; 5000], &mine).is_err());
        assert!(check(1, b"{", &mine).is_err());
    }
}
