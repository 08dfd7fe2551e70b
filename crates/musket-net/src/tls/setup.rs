//! Setting up a TLS mesh: every party listens, dials every peer, and accepts every peer's dial,
//! each connection authenticated by its pinned certificate.

use super::identity::{server_config, PeerAddress, PinnedServer, TlsConfig};
use super::{Inbound, Outbound};
use crate::NetError;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::{CertificateDer, ServerName};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

const HELLO_MAGIC: &[u8; 4] = b"MSKT";
/// The listener's answer to a verified hello.
const ACK: u8 = 0xA5;
/// The listener's answer to a hello whose claimed party id does not match the certificate.
const REFUSED: u8 = 0x5A;

pub(super) type Streams = (Vec<Option<Outbound>>, Vec<Option<Inbound>>);

/// Verified TLS streams to (outbound) and from (inbound) every peer.
pub(super) fn establish(config: &TlsConfig) -> Result<Streams, NetError> {
    let n = config.parties.len();
    let me = config.party_id;
    if me >= n {
        return Err(NetError::BadParty(me));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let own_cert = config.parties[me].cert.clone();
    let listen = config.listen.as_deref().unwrap_or(&config.parties[me].address);
    let listener =
        TcpListener::bind(listen).map_err(|e| NetError::Setup(format!("cannot listen on {listen}: {e}")))?;
    let server_cfg = server_config(&provider, config, own_cert.clone())?;
    let deadline = Instant::now() + config.connect_timeout;

    let peers_certs: Vec<_> = config.parties.iter().map(|p| p.cert.clone()).collect();
    // The addresses the other parties dial from are unknown, but their hosts usually resolve
    // to them: handshakes from there are cut last under a flood.
    let peer_ips: Vec<std::net::IpAddr> = config
        .parties
        .iter()
        .filter(|p| p.id != me)
        .filter_map(|p| p.address.to_socket_addrs().ok())
        .flatten()
        .map(|a| a.ip())
        .collect();
    let accept_thread = {
        let handshake_timeout = config.connect_timeout;
        std::thread::Builder::new()
            .name(format!("musket-accept-{me}"))
            .spawn(move || {
                accept_all(listener, server_cfg, me, peers_certs, peer_ips, deadline, handshake_timeout)
            })
            .map_err(|e| NetError::Setup(format!("cannot spawn thread: {e}")))?
    };

    let mut outbound: Vec<Option<Outbound>> = (0..n).map(|_| None).collect();
    let mut dial_error = None;
    for peer in config.parties.iter().filter(|p| p.id != me) {
        match dial(&provider, config, peer, own_cert.clone(), deadline) {
            Ok(s) => outbound[peer.id] = Some(s),
            Err(e) => {
                dial_error = Some(e);
                break;
            }
        }
    }
    let inbound = accept_thread.join().map_err(|_| NetError::Setup("accept thread panicked".into()))??;
    if let Some(e) = dial_error {
        return Err(e);
    }
    Ok((outbound, inbound))
}

fn dial(
    provider: &Arc<CryptoProvider>,
    config: &TlsConfig,
    peer: &PeerAddress,
    own_cert: CertificateDer<'static>,
    deadline: Instant,
) -> Result<Outbound, NetError> {
    let verifier =
        PinnedServer { expected: peer.cert.clone(), algs: provider.signature_verification_algorithms };
    let cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(vec![own_cert], config.key.clone_key())
        .map_err(|e| NetError::Setup(format!("own certificate or key rejected: {e}")))?;
    let cfg = Arc::new(cfg);
    let addr = peer
        .address
        .to_socket_addrs()
        .map_err(|e| NetError::Setup(format!("bad address for party {}: {e}", peer.id)))?
        .next()
        .ok_or_else(|| NetError::Setup(format!("address of party {} resolves to nothing", peer.id)))?;
    // Retry until the deadline: the peer may not listen yet, or an unauthenticated flood may
    // have cut this connection before its handshake finished. A refusal (the peer rejected
    // our certificate or identity, or its certificate is not the pinned one) is final.
    let mut last = String::from("no attempt finished");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NetError::Link {
                peer: peer.id,
                reason: format!("not reachable at {} before the connect timeout ({last})", peer.address),
            });
        }
        let tcp = match TcpStream::connect_timeout(&addr, left.min(Duration::from_secs(2))) {
            Ok(s) => s,
            Err(e) => {
                last = e.to_string();
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        match handshake(cfg.clone(), config.party_id, peer.id, tcp, deadline) {
            Ok(stream) => return Ok(stream),
            Err(Attempt::Final(e)) => return Err(e),
            Err(Attempt::Retry(reason)) => {
                tracing::debug!(peer = peer.id, %reason, "connection attempt failed; retrying");
                last = reason;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Why one connection attempt failed.
enum Attempt {
    /// The link broke (reset, closed, timed out): worth another attempt.
    Retry(String),
    /// The peer refused us or is not who it should be.
    Final(NetError),
}

/// True for errors of the connection itself rather than of TLS or of the peer's answer.
fn transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::UnexpectedEof
            | ErrorKind::BrokenPipe
            | ErrorKind::TimedOut
            | ErrorKind::WouldBlock
            | ErrorKind::NotConnected
    )
}

/// One TLS handshake, hello and acknowledgement on a fresh TCP connection.
fn handshake(
    cfg: Arc<ClientConfig>,
    me: usize,
    peer: usize,
    mut tcp: TcpStream,
    deadline: Instant,
) -> Result<Outbound, Attempt> {
    let io = |what: &str, e: std::io::Error| {
        if transient(&e) {
            Attempt::Retry(format!("{what}: {e}"))
        } else {
            Attempt::Final(NetError::Link { peer, reason: format!("{what}: {e}") })
        }
    };
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
    tcp.set_nodelay(true).map_err(|e| io("TLS handshake", e))?;
    tcp.set_read_timeout(Some(left)).map_err(|e| io("TLS handshake", e))?;
    tcp.set_write_timeout(Some(left)).map_err(|e| io("TLS handshake", e))?;
    let name = ServerName::try_from(format!("party-{peer}"))
        .map_err(|e| Attempt::Final(NetError::Setup(e.to_string())))?;
    let mut conn =
        ClientConnection::new(cfg, name).map_err(|e| Attempt::Final(NetError::Setup(e.to_string())))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| io("TLS handshake", e))?;
    }
    let mut stream = StreamOwned::new(conn, tcp);
    let mut hello = HELLO_MAGIC.to_vec();
    hello.extend_from_slice(&(me as u32).to_le_bytes());
    stream.write_all(&hello).map_err(|e| io("TLS handshake", e))?;
    stream.flush().map_err(|e| io("TLS handshake", e))?;
    let mut ack = [0u8; 1];
    stream.read_exact(&mut ack).map_err(|e| {
        if transient(&e) {
            Attempt::Retry(format!("no acknowledgement: {e}"))
        } else {
            Attempt::Final(NetError::Link {
                peer,
                reason: format!("refused our connection (certificate not accepted?): {e}"),
            })
        }
    })?;
    match ack[0] {
        ACK => Ok(stream),
        REFUSED => Err(Attempt::Final(NetError::Link {
            peer,
            reason: "refused our connection: our certificate is not the one it pins for our party id".into(),
        })),
        _ => {
            Err(Attempt::Final(NetError::Malformed { peer, reason: "bad handshake acknowledgement".into() }))
        }
    }
}

/// Longest an incoming connection may stay silent before its first byte: a peer that dials
/// sends its TLS hello at once, an idle connection (a port scan, a flood) is cut.
const FIRST_BYTE_LIMIT: Duration = Duration::from_secs(1);
/// Longest a whole incoming handshake may take.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);
/// Handshakes in progress at once. When a new connection arrives and all are taken, one is cut:
/// at random among those that do not come from a peer's address (all of them if none), so that
/// a flood cannot aim at the expected peers' handshakes, which finish in milliseconds; a peer's
/// dial that is cut anyway is retried.
const MAX_PENDING_HANDSHAKES: usize = 256;
/// Stack of a handshake thread (a TLS 1.3 handshake needs far less).
const HANDSHAKE_STACK: usize = 512 << 10;

/// A handshake in progress: its number, a handle on its socket (to cut it when evicted), and
/// whether it comes from the address of one of the cluster's parties.
struct Pending {
    id: u64,
    socket: TcpStream,
    from_peer: bool,
}

/// A random index below `n` (std's hasher keys are random per process: enough to keep a flood
/// from predicting which pending handshake is cut).
fn random_below(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    (h.finish() % n.max(1) as u64) as usize
}

fn accept_all(
    listener: TcpListener,
    cfg: Arc<ServerConfig>,
    me: usize,
    certs: Vec<CertificateDer<'static>>,
    peer_ips: Vec<std::net::IpAddr>,
    deadline: Instant,
    handshake_timeout: Duration,
) -> Result<Vec<Option<Inbound>>, NetError> {
    let n = certs.len();
    let certs = Arc::new(certs);
    let mut inbound: Vec<Option<Inbound>> = (0..n).map(|_| None).collect();
    listener.set_nonblocking(true).map_err(|e| NetError::Setup(e.to_string()))?;
    // Each handshake runs on its own thread with a short limit, so one slow or hostile client
    // cannot block the legitimate peers.
    let (done_tx, done_rx) = channel::<(u64, Result<(usize, Inbound), String>)>();
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let (mut next_id, mut refused, mut evicted) = (0u64, 0u64, 0u64);
    loop {
        while let Ok((id, res)) = done_rx.try_recv() {
            pending.retain(|p| p.id != id);
            match res {
                Ok((peer, stream)) if inbound[peer].is_none() => inbound[peer] = Some(stream),
                Ok((peer, _)) => tracing::warn!(party = me, peer, "duplicate connection refused"),
                Err(reason) => {
                    refused += 1;
                    // Log the first few refusals, then only every hundredth: no log flooding.
                    if refused <= 5 || refused.is_multiple_of(100) {
                        tracing::warn!(party = me, %reason, refused, "incoming connection refused");
                    }
                }
            }
        }
        if inbound.iter().enumerate().all(|(i, s)| i == me || s.is_some()) {
            break;
        }
        if Instant::now() >= deadline {
            let missing: Vec<String> =
                (0..n).filter(|&i| i != me && inbound[i].is_none()).map(|i| i.to_string()).collect();
            return Err(NetError::Setup(format!(
                "party {} did not connect before the connect timeout",
                missing.join(", party ")
            )));
        }
        match listener.accept() {
            Ok((tcp, source)) => {
                if pending.len() >= MAX_PENDING_HANDSHAKES {
                    let strangers: Vec<usize> =
                        (0..pending.len()).filter(|&i| !pending[i].from_peer).collect();
                    let victim = if strangers.is_empty() {
                        random_below(pending.len())
                    } else {
                        strangers[random_below(strangers.len())]
                    };
                    if let Some(old) = pending.remove(victim) {
                        let _ = old.socket.shutdown(Shutdown::Both);
                        evicted += 1;
                        if evicted == 1 || evicted.is_multiple_of(1000) {
                            tracing::warn!(
                                party = me,
                                evicted,
                                "too many pending connections; cutting the oldest"
                            );
                        }
                    }
                }
                let Ok(socket) = tcp.try_clone() else { continue };
                let id = next_id;
                next_id += 1;
                let (cfg, certs, tx) = (cfg.clone(), certs.clone(), done_tx.clone());
                let limit = handshake_timeout.min(HANDSHAKE_LIMIT);
                let spawned = std::thread::Builder::new()
                    .name(format!("musket-handshake-{me}"))
                    .stack_size(HANDSHAKE_STACK)
                    .spawn(move || {
                        let _ = tx.send((id, accept_one(tcp, &cfg, me, &certs, limit)));
                    });
                if spawned.is_ok() {
                    pending.push_back(Pending { id, socket, from_peer: peer_ips.contains(&source.ip()) });
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
            // Out of file descriptors or a connection reset before it was accepted: keep going.
            Err(e) => {
                tracing::warn!(party = me, error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    for p in pending {
        let _ = p.socket.shutdown(Shutdown::Both);
    }
    Ok(inbound)
}

fn accept_one(
    mut tcp: TcpStream,
    cfg: &Arc<ServerConfig>,
    me: usize,
    certs: &[CertificateDer<'static>],
    limit: Duration,
) -> Result<(usize, Inbound), String> {
    let deadline = Instant::now() + limit;
    tcp.set_nonblocking(false).map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(FIRST_BYTE_LIMIT.min(limit))).map_err(|e| e.to_string())?;
    match tcp.peek(&mut [0u8; 1]) {
        Ok(0) => return Err("closed before its hello".into()),
        Ok(_) => {}
        Err(e) => return Err(format!("silent for {FIRST_BYTE_LIMIT:?}: {e}")),
    }
    // Every read and write gets what is left of the whole handshake's time, so a client that
    // trickles bytes cannot hold its slot for longer.
    let left = |tcp: &TcpStream| -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("handshake not finished within {limit:?}"));
        }
        tcp.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(left)).map_err(|e| e.to_string())
    };
    let mut conn = ServerConnection::new(cfg.clone()).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        left(&tcp)?;
        conn.complete_io(&mut tcp).map_err(|e| format!("TLS handshake: {e}"))?;
    }
    let presented = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or("no client certificate")?;
    let mut stream = StreamOwned::new(conn, tcp);
    left(&stream.sock)?;
    let mut hello = [0u8; 8];
    stream.read_exact(&mut hello).map_err(|e| format!("no hello: {e}"))?;
    if &hello[..4] != HELLO_MAGIC {
        return Err("bad hello".into());
    }
    let claimed = u32::from_le_bytes(hello[4..8].try_into().expect("4 bytes")) as usize;
    if claimed >= certs.len() || claimed == me || certs[claimed].as_ref() != presented.as_slice() {
        // Say so, so that the dialer does not take it for a broken link and retry.
        let _ = stream.write_all(&[REFUSED]).and_then(|_| stream.flush());
        return Err(format!("peer claims party {claimed} but presents another party's certificate"));
    }
    stream.write_all(&[ACK]).map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    stream.sock.set_read_timeout(None).map_err(|e| e.to_string())?;
    stream.sock.set_write_timeout(None).map_err(|e| e.to_string())?;
    Ok((claimed, stream))
}
