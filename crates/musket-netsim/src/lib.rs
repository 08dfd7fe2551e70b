//! A TCP relay that stands between parties to emulate a network or break it.
//!
//! Each relay listens on one address and forwards every connection to one target, adding a
//! one-way delay and a bandwidth cap to both directions (what `tc netem delay D rate R` does on
//! a link), and optionally one fault: the connection is dropped, stalled or has one byte flipped
//! once a given number of bytes has passed. It exists because the kernels Musket is tested on do
//! not always have `sch_netem`, and because faults must be injected between real processes.
//! Bytes are forwarded opaquely, so the parties' TLS stays end to end.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a relay keeps retrying a target that does not accept yet.
const TARGET_WAIT: Duration = Duration::from_secs(30);

/// What a link adds to the traffic crossing it, in each direction.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkProfile {
    /// One-way delay (the round-trip time is twice this).
    pub delay: Duration,
    /// Bandwidth cap in bytes per second (`None`: unlimited).
    pub bytes_per_sec: Option<f64>,
}

/// One fault, fired once, on the first connection whose dialer-to-listener stream reaches the
/// given byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close both directions of the connection abruptly.
    Drop {
        /// Bytes forwarded before the connection is dropped.
        after: u64,
    },
    /// Stop forwarding in both directions but keep the sockets open: a peer that stalls.
    Stall {
        /// Bytes forwarded before the stall.
        after: u64,
    },
    /// Flip the lowest bit of the byte at this offset, then go on forwarding.
    Corrupt {
        /// Offset of the byte to flip.
        at: u64,
    },
}

impl Fault {
    fn offset(self) -> u64 {
        match self {
            Fault::Drop { after } | Fault::Stall { after } => after,
            Fault::Corrupt { at } => at,
        }
    }
}

/// A running relay; dropping it stops accepting and closes its connections.
pub struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
    forwarded: Arc<AtomicU64>,
    conns: Arc<Mutex<Vec<Arc<Conn>>>>,
}

impl Relay {
    /// Listens on `listen` (port 0 picks a free one) and forwards each connection to `target`.
    pub fn start(
        listen: &str,
        target: SocketAddr,
        profile: LinkProfile,
        fault: Option<Fault>,
    ) -> std::io::Result<Relay> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicU64::new(0));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            profile,
            fault,
            stop: stop.clone(),
            fired: fired.clone(),
            forwarded: forwarded.clone(),
            conns: conns.clone(),
        };
        std::thread::Builder::new().name("netsim-accept".into()).spawn(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((inbound, _)) => {
                        let _ = inbound.set_nonblocking(false);
                        let shared = shared.clone();
                        // The target may not listen yet (parties start in any order): retry
                        // for a while, as a dialing party would.
                        let _ = std::thread::Builder::new().name("netsim-dial".into()).spawn(move || {
                            let deadline = Instant::now() + TARGET_WAIT;
                            while Instant::now() < deadline && !shared.stop.load(Ordering::Relaxed) {
                                if let Ok(outbound) = TcpStream::connect(target) {
                                    let _ = connection(inbound, outbound, shared);
                                    return;
                                }
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })?;
        Ok(Relay { addr, stop, fired, forwarded, conns })
    }

    /// The address the relay listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the fault has fired.
    pub fn fault_fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// Bytes forwarded so far, both directions, all connections.
    pub fn bytes_forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.conns.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            c.drop_now();
        }
    }
}

#[derive(Clone)]
struct Shared {
    profile: LinkProfile,
    fault: Option<Fault>,
    stop: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
    forwarded: Arc<AtomicU64>,
    conns: Arc<Mutex<Vec<Arc<Conn>>>>,
}

/// State of one relayed connection, seen by its four threads.
struct Conn {
    stalled: AtomicBool,
    dropped: AtomicBool,
    sockets: [TcpStream; 2],
}

impl Conn {
    fn drop_now(&self) {
        self.dropped.store(true, Ordering::SeqCst);
        for s in &self.sockets {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
    fn halted(&self, shared: &Shared) -> bool {
        self.dropped.load(Ordering::Relaxed) || shared.stop.load(Ordering::Relaxed)
    }
}

fn connection(inbound: TcpStream, outbound: TcpStream, shared: Shared) -> std::io::Result<()> {
    inbound.set_nodelay(true)?;
    outbound.set_nodelay(true)?;
    let conn = Arc::new(Conn {
        stalled: AtomicBool::new(false),
        dropped: AtomicBool::new(false),
        sockets: [inbound.try_clone()?, outbound.try_clone()?],
    });
    shared.conns.lock().unwrap_or_else(|e| e.into_inner()).push(conn.clone());
    // Dialer to listener carries the fault; both directions get the profile.
    pipe(inbound.try_clone()?, outbound.try_clone()?, conn.clone(), shared.clone(), true)?;
    pipe(outbound, inbound, conn, shared, false)
}

enum Chunk {
    Data(Instant, Vec<u8>),
    Eof,
}

fn pipe(
    mut from: TcpStream,
    to: TcpStream,
    conn: Arc<Conn>,
    shared: Shared,
    faulty: bool,
) -> std::io::Result<()> {
    let (tx, rx) = channel::<Chunk>();
    {
        let (conn, shared) = (conn.clone(), shared.clone());
        std::thread::Builder::new()
            .name("netsim-read".into())
            .spawn(move || read_side(&mut from, tx, &conn, &shared, faulty))?;
    }
    std::thread::Builder::new()
        .name("netsim-write".into())
        .spawn(move || write_side(to, rx, &conn, &shared, faulty))?;
    Ok(())
}

fn read_side(from: &mut TcpStream, tx: Sender<Chunk>, conn: &Conn, shared: &Shared, faulty: bool) {
    let mut offset = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Chunk::Eof);
                return;
            }
            Ok(n) => n,
        };
        if conn.halted(shared) {
            return;
        }
        if faulty && conn.stalled.load(Ordering::SeqCst) {
            continue; // swallowed by the stalled link
        }
        let mut data = buf[..n].to_vec();
        let due = Instant::now() + shared.profile.delay;
        if let Some(fault) = shared.fault.filter(|_| faulty) {
            let at = fault.offset();
            let hit = at >= offset && at < offset + n as u64;
            offset += n as u64;
            if hit && !shared.fired.swap(true, Ordering::SeqCst) {
                let cut = (at - (offset - n as u64)) as usize;
                match fault {
                    Fault::Corrupt { .. } => data[cut] ^= 1,
                    Fault::Drop { .. } => {
                        data.truncate(cut);
                        let _ = tx.send(Chunk::Data(due, data));
                        // Let the writer flush what came before the cut, then cut.
                        std::thread::sleep(shared.profile.delay + Duration::from_millis(50));
                        conn.drop_now();
                        return;
                    }
                    Fault::Stall { .. } => {
                        data.truncate(cut);
                        let _ = tx.send(Chunk::Data(due, data));
                        // From here on the other direction delivers nothing either.
                        conn.stalled.store(true, Ordering::SeqCst);
                        continue;
                    }
                }
            }
        }
        if tx.send(Chunk::Data(due, data)).is_err() {
            return;
        }
    }
}

fn write_side(mut to: TcpStream, rx: Receiver<Chunk>, conn: &Conn, shared: &Shared, faulty: bool) {
    // When the link is free again, given the bandwidth cap.
    let mut free_at = Instant::now();
    while let Ok(chunk) = rx.recv() {
        if conn.halted(shared) {
            return;
        }
        // The faulty direction's queue holds only bytes from before the stall point; the other
        // direction delivers nothing once the link has stalled. A stalled link never closes.
        let stalled = conn.stalled.load(Ordering::SeqCst);
        let (due, data) = match chunk {
            Chunk::Data(due, data) if !stalled || faulty => (due, data),
            Chunk::Data(..) => continue,
            Chunk::Eof if stalled => return,
            Chunk::Eof => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
        };
        let start = free_at.max(due);
        sleep_until(start);
        if to.write_all(&data).is_err() {
            conn.drop_now();
            return;
        }
        shared.forwarded.fetch_add(data.len() as u64, Ordering::Relaxed);
        free_at = match shared.profile.bytes_per_sec {
            Some(rate) => start + Duration::from_secs_f64(data.len() as f64 / rate),
            None => start,
        };
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}
