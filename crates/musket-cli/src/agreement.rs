//! Before any protocol message, the parties of a cluster check that they run the same thing:
//! the same Musket version, the same cluster (protocol, addresses, certificates) and the same
//! job with the same public parameters. A mismatch (two operators editing their cluster files
//! differently, one party started with another command) fails at once with a message that
//! says what differs, instead of a confusing protocol error later.

use crate::config::{parse_cluster, PARTIES};
use anyhow::{bail, Context, Result};
use musket_net::{TlsConfig, TlsTransport, Transport, DEFAULT_MAX_FRAME};
use musket_session::Backend;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The revision of what the parties compute and send, bumped whenever builds must agree on
/// something the package version does not show: where the malicious back end verifies
/// (revision 2: from 512 MiB of pending products), the order of a convolution's product
/// (revision 3: weights times the transposed im2col). Two builds that differed there would
/// stop with a malformed message or `cheating detected`, or, for a convolution, multiply
/// matrices laid out differently and open a wrong result; parties of different revisions
/// refuse to start instead.
pub const PROTOCOL_REVISION: u32 = 3;

/// This build's version as told to its peers: the package version and the protocol revision.
pub fn version() -> String {
    format!("{} (protocol revision {PROTOCOL_REVISION})", env!("CARGO_PKG_VERSION"))
}

/// What a party runs, as told to its peers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobDescriptor {
    /// The binary's version and protocol revision ([`version`]).
    pub version: String,
    /// `2pc` or `3pc`, and the security level.
    pub protocol: String,
    /// SHA-256 of the shared part of the cluster file (protocol, each party's id, address and
    /// certificate), in hex; local settings (listen address, timeouts, buffer cap) are not part
    /// of it.
    pub cluster: String,
    /// The subcommand.
    pub command: String,
    /// Its public parameters, as `name=value` pairs.
    pub params: Vec<String>,
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
pub fn cluster_digest(protocol: &str, parties: &[(usize, String, Vec<u8>)]) -> String {
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
pub fn agree(transport: &mut TlsTransport, me: usize, parties: usize, mine: &JobDescriptor) -> Result<()> {
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

/// A party's view of its cluster: the protocol, its TLS configuration, and the digest of the
/// cluster's shared part (see [`JobDescriptor::cluster`]).
pub struct Loaded {
    /// The protocol.
    pub backend: Backend,
    /// This party's TLS configuration.
    pub tls: TlsConfig,
    /// The digest of the cluster's shared part.
    pub digest: String,
}

/// Reads the cluster file, the certificates and this party's key (`party<id>.key` beside the
/// cluster file unless `key` is given), checking them as they are read.
pub fn load(config: &Path, id: usize, key: Option<&Path>) -> Result<Loaded> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("cannot read {}", config.display()))?;
    let file = parse_cluster(&text).with_context(|| format!("invalid cluster file {}", config.display()))?;
    if id >= PARTIES {
        bail!("--id {id} is not a party of this cluster");
    }
    let entries = &file.party;
    let dir = config.parent().unwrap_or(Path::new("."));
    let listen = entries[id].listen.clone();
    let mut parties = Vec::new();
    let mut ders: Vec<(usize, String, Vec<u8>)> = Vec::new();
    for p in entries {
        let cert_path = dir.join(&p.certificate);
        let pem = crate::files::read_bounded(&cert_path, "certificate", 1 << 20)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .with_context(|| {
                format!("cannot read the certificate of party {} at {}", p.id, cert_path.display())
            })?;
        let der = musket_net::certificate_from_pem(&pem)
            .with_context(|| format!("the certificate of party {} ({})", p.id, cert_path.display()))?;
        if let Some((other, _, _)) = ders.iter().find(|(_, _, d)| d.as_slice() == der.as_ref()) {
            bail!(
                "parties {other} and {} have the same certificate ({}): each party needs its own",
                p.id,
                cert_path.display()
            );
        }
        ders.push((p.id, p.address.clone(), der.as_ref().to_vec()));
        parties.push((p.address.clone(), pem));
    }
    let backend = file.protocol.with_security(file.security).map_err(anyhow::Error::msg)?;
    let digest = cluster_digest(&format!("{} {}", backend.name(), backend.security().name()), &ders);
    let key_path = key.map(Path::to_path_buf).unwrap_or_else(|| dir.join(format!("party{id}.key")));
    let key_pem = std::fs::read_to_string(&key_path)
        .with_context(|| format!("cannot read key file {}", key_path.display()))?;
    let mut tls = TlsConfig::from_pem(id, parties, &key_pem)?;
    tls.timeout = Duration::from_secs(file.timeout_secs);
    tls.connect_timeout = Duration::from_secs(file.connect_timeout_secs);
    tls.max_frame = DEFAULT_MAX_FRAME;
    tls.listen = listen;
    if let Some(mb) = file.max_buffered_mb {
        tls.max_buffered = mb << 20;
    }
    Ok(Loaded { backend, tls, digest })
}

/// Loads the cluster, connects to every peer over mutual TLS and checks that all parties run
/// `command` with the same public `params` (and the same version and cluster): the set-up of
/// every `musket party` job and of the Python package's cluster sessions.
pub fn connect(
    config: &Path,
    id: usize,
    key: Option<&Path>,
    command: &str,
    params: Vec<String>,
) -> Result<(Backend, TlsTransport)> {
    let Loaded { backend, tls, digest } = load(config, id, key)?;
    let mut transport = TlsTransport::connect(tls)?;
    let mine = JobDescriptor {
        version: version(),
        protocol: format!("{} {}", backend.name(), backend.security().name()),
        cluster: digest,
        command: command.into(),
        params,
    };
    agree(&mut transport, id, PARTIES, &mine)?;
    Ok((backend, transport))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(command: &str, params: &[&str]) -> JobDescriptor {
        JobDescriptor {
            version: version(),
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
            (
                JobDescriptor { version: "0.1.0 (protocol revision 2)".into(), ..mine.clone() },
                "runs Musket 0.1.0 (protocol revision 2)",
            ),
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
