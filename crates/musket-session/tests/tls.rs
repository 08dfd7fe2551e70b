//! The same protocols over mutual TLS on localhost, and what happens when a party misbehaves.
mod common;
use common::*;
use musket_core::{lt, MpcError, Protocol};
use musket_net::{generate_identity, Net, NetError, PartyIdentity, TlsConfig, TlsTransport};
use musket_rep3::{Cheat, Rep3, Rep3Mal, Target};
use musket_ring::RingTensor;
use musket_session::{run_party, Backend, Job};
use std::time::Duration;

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

struct Cluster {
    ids: Vec<PartyIdentity>,
    ports: Vec<u16>,
}

impl Cluster {
    fn new() -> Self {
        Self { ids: (0..3).map(|i| generate_identity(i).unwrap()).collect(), ports: free_ports(3) }
    }
    fn config(&self, me: usize, key_pem: &str, timeout: Duration) -> TlsConfig {
        let certs = self.ids.iter().map(|i| i.cert_pem.clone()).collect();
        self.config_with(me, key_pem, certs, timeout)
    }
    fn config_with(&self, me: usize, key_pem: &str, certs: Vec<String>, timeout: Duration) -> TlsConfig {
        let parties = (0..3).map(|i| (format!("127.0.0.1:{}", self.ports[i]), certs[i].clone())).collect();
        let mut c = TlsConfig::from_pem(me, parties, key_pem).unwrap();
        c.timeout = timeout;
        c.connect_timeout = Duration::from_secs(10);
        c
    }
    fn connect(&self, me: usize, timeout: Duration) -> Result<TlsTransport, NetError> {
        TlsTransport::connect(self.config(me, &self.ids[me].key_pem, timeout))
    }
}

/// Repeated comparisons, so that there is a "middle" to fail in.
struct Loop {
    rounds: usize,
}

impl Job for Loop {
    type Output = Vec<u64>;
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Vec<u64>> {
        let (a, b) = (RingTensor::from_vec(vec![3, 9, 4]), RingTensor::from_vec(vec![5, 2, 4]));
        let x = p.input(0, owned(p, 0, &a), &[3])?;
        let y = p.input(1, owned(p, 1, &b), &[3])?;
        let mut last = Vec::new();
        for _ in 0..self.rounds {
            let c = lt(p, &x, &y)?;
            last = p.reveal(&c)?.into_data();
        }
        Ok(last)
    }
}

#[test]
fn both_backends_run_over_tls() {
    for backend in BACKENDS {
        let cluster = Cluster::new();
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3)
                .map(|i| {
                    let cluster = &cluster;
                    s.spawn(move || {
                        let t = cluster.connect(i, Duration::from_secs(10))?;
                        run_party(backend, Box::new(t), &Loop { rounds: 2 })
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in results {
            let o = r.unwrap_or_else(|e| panic!("{}: {e}", backend.name()));
            if let Some(v) = o.output {
                assert_eq!(v, vec![1, 0, 0]);
            }
        }
    }
}

/// The error names the failed party: directly, or as the cause relayed by a peer's abort.
fn assert_names_party(err: &MpcError, peer: usize) {
    assert!(matches!(err, MpcError::Net(_)), "expected a network error, got {err}");
    assert!(
        err.to_string().contains(&format!("party {peer} "))
            || err.to_string().ends_with(&format!("party {peer}")),
        "{err}"
    );
}

#[test]
fn a_party_that_disappears_mid_protocol_is_named_by_the_others() {
    let cluster = Cluster::new();
    let (r0, r1) = std::thread::scope(|s| {
        let c = &cluster;
        let h0 = s.spawn(move || {
            run_party(
                Backend::ThreePc,
                Box::new(c.connect(0, Duration::from_secs(10))?),
                &Loop { rounds: 1000 },
            )
        });
        let h1 = s.spawn(move || {
            run_party(
                Backend::ThreePc,
                Box::new(c.connect(1, Duration::from_secs(10))?),
                &Loop { rounds: 1000 },
            )
        });
        // Party 2 follows the protocol for a while, then its process "dies": its sockets
        // close without any goodbye.
        let t2 = c.connect(2, Duration::from_secs(10)).unwrap();
        let mut p2 = Rep3::new(Net::new(Box::new(t2))).unwrap();
        let _ = Loop { rounds: 3 }.run(&mut p2);
        drop(p2);
        (h0.join().unwrap(), h1.join().unwrap())
    });
    assert_names_party(&r0.unwrap_err(), 2);
    assert_names_party(&r1.unwrap_err(), 2);
}

#[test]
fn a_stalled_peer_times_out_with_its_name() {
    let cluster = Cluster::new();
    let timeout = Duration::from_millis(1500);
    let started = std::time::Instant::now();
    let (r0, r1) = std::thread::scope(|s| {
        let c = &cluster;
        let h0 = s.spawn(move || {
            run_party(Backend::ThreePc, Box::new(c.connect(0, timeout)?), &Loop { rounds: 5 })
        });
        let h1 = s.spawn(move || {
            run_party(Backend::ThreePc, Box::new(c.connect(1, timeout)?), &Loop { rounds: 5 })
        });
        // Party 2 connects, then never says anything.
        let t2 = c.connect(2, timeout).unwrap();
        let r = (h0.join().unwrap(), h1.join().unwrap());
        drop(t2);
        r
    });
    let e0 = r0.unwrap_err();
    let e1 = r1.unwrap_err();
    // Party 2 is silent; a party may instead learn of the failure from the other's abort.
    for e in [&e0, &e1] {
        assert_names_party(e, 2);
    }
    assert!(
        matches!(e0, MpcError::Net(NetError::Timeout { peer: 2, .. }))
            || matches!(e1, MpcError::Net(NetError::Timeout { peer: 2, .. }))
    );
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
}

#[test]
fn a_party_with_the_wrong_certificate_is_refused() {
    let cluster = Cluster::new();
    let impostor = generate_identity(1).unwrap();
    let results: Vec<Result<TlsTransport, NetError>> = std::thread::scope(|s| {
        let c = &cluster;
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let impostor = &impostor;
                s.spawn(move || {
                    let mut cfg = if i == 1 {
                        // The impostor claims id 1 with a key and certificate of its own.
                        let mut certs: Vec<String> = c.ids.iter().map(|x| x.cert_pem.clone()).collect();
                        certs[1] = impostor.cert_pem.clone();
                        c.config_with(1, &impostor.key_pem, certs, Duration::from_secs(5))
                    } else {
                        c.config(i, &c.ids[i].key_pem, Duration::from_secs(5))
                    };
                    cfg.connect_timeout = Duration::from_secs(3);
                    TlsTransport::connect(cfg)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, r) in results.iter().enumerate() {
        let err = r.as_ref().err().unwrap_or_else(|| panic!("party {i} connected to an impostor"));
        if i != 1 {
            assert!(err.to_string().contains("party 1"), "party {i}: {err}");
        }
    }
}

/// Products of 256 elements, three after one another, then a chain of small ones and an
/// output: with a pending limit of 4096 words the first three are verified in the
/// background, on the links' second channel, while the chain runs on the first.
fn products_then_a_chain(p: &mut Rep3Mal) -> Result<RingTensor, MpcError> {
    let v = RingTensor::new(vec![256], (0..256).collect())?;
    let x = p.input(0, (p.party_id() == 0).then_some(&v), &[256])?;
    let mut big = x.clone();
    for _ in 0..3 {
        big = p.mul(&big, &x)?;
    }
    let mut small = p.reshape(&big, &[32, 8])?;
    small = p.sum_axis(&small, 0)?;
    for _ in 0..20 {
        small = p.mul(&small, &small)?;
    }
    let out = p.reveal(&small)?;
    p.finish()?;
    Ok(out)
}

/// Runs [`products_then_a_chain`] on three TLS parties, with `cheat` if given.
fn malicious_over_tls(cheat: Option<Cheat>) -> Vec<Result<RingTensor, MpcError>> {
    let cluster = Cluster::new();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let cluster = &cluster;
                s.spawn(move || {
                    let t = cluster.connect(i, Duration::from_secs(10))?;
                    let mut p = Rep3Mal::new(Net::new(Box::new(t)))?.with_pending_limit(4096);
                    if let Some(c) = cheat {
                        p = p.with_cheat(c);
                    }
                    let res = products_then_a_chain(&mut p).map_err(|e| p.explain_failure(e));
                    if let Err(e) = &res {
                        if !e.is_peer_abort() {
                            p.abort(&e.public_reason());
                        }
                    }
                    res
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn malicious_proofs_in_the_background_run_over_tls_and_catch_cheating() {
    let outs = malicious_over_tls(None);
    let first = outs[0].as_ref().expect("honest run over TLS").clone();
    for o in &outs {
        assert_eq!(o.as_ref().expect("honest run over TLS"), &first);
    }
    // A wrong proof message in the background verification (the first proof message is
    // one of it): every honest party stops with cheating detected.
    for party in 0..3 {
        let cheat = Cheat { party, target: Target::Proof, nth: 0, error: 1, last_word: false };
        let outs = malicious_over_tls(Some(cheat));
        for (id, o) in outs.iter().enumerate().filter(|(id, _)| *id != party) {
            assert!(matches!(o, Err(e) if e.is_cheating_detected()), "party {id} with {cheat:?}: {o:?}");
        }
    }
}
