//! Faults between real processes: a dropped, stalled or corrupted connection (through a
//! `musket-netsim` relay) and an authenticated but hostile party that sends oversized,
//! truncated, corrupt, replayed or wrong-round frames. Every honest party must exit non-zero
//! within the timeout, naming a peer and the cause, with no panic and no result printed.

mod common;

use common::*;
use musket_cli::config::parse_cluster;
use musket_net::{FrameHeader, FrameKind, TlsConfig, TlsTransport, Transport};
use musket_netsim::{Fault, LinkProfile, Relay};
use std::net::ToSocketAddrs;
use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

/// Seconds a party waits for a message in these tests.
const TIMEOUT_SECS: u64 = 3;
const LOOP: [&str; 5] = ["compare-loop", "--elements", "20000", "--iterations", "1000000"];

/// Puts a relay in front of party `k`: the others dial the relay, party `k` listens behind it.
fn relay_in_front_of(cfg: &Path, k: usize, fault: Fault) -> Relay {
    let mut table: toml::Table = std::fs::read_to_string(cfg).unwrap().parse().unwrap();
    let parties = table["party"].as_array_mut().unwrap();
    let entry = parties.iter_mut().find(|p| p["id"].as_integer() == Some(k as i64)).unwrap();
    let address = entry["address"].as_str().unwrap().to_string();
    let target = address.to_socket_addrs().unwrap().next().unwrap();
    let relay = Relay::start("127.0.0.1:0", target, LinkProfile::default(), Some(fault)).unwrap();
    let entry = entry.as_table_mut().unwrap();
    entry.insert("listen".into(), address.into());
    entry.insert("address".into(), relay.local_addr().to_string().into());
    std::fs::write(cfg, toml::to_string(&table).unwrap()).unwrap();
    relay
}

/// Waits for every party; each must fail cleanly, naming a party. Returns their stderr.
fn all_fail_cleanly(kids: Vec<Child>, since: Instant) -> Vec<String> {
    let limit = Duration::from_secs(TIMEOUT_SECS * 3 + 10);
    let outs: Vec<Output> = kids.into_iter().map(|k| wait_bounded(k, limit)).collect();
    let errs: Vec<String> = outs.iter().map(|o| text(&o.stderr)).collect();
    for (o, err) in outs.iter().zip(&errs) {
        assert!(!o.status.success(), "a party must fail: {err}");
        assert!(err.contains("error:") && err.contains("party "), "error should name a party: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(o.stdout.is_empty(), "no partial result may be printed: {}", text(&o.stdout));
    }
    assert!(
        since.elapsed() < Duration::from_secs(TIMEOUT_SECS * 3 + 5),
        "parties must stop within the timeout: {errs:?}"
    );
    errs
}

/// Runs the three parties of a 3PC comparison loop with a fault relayed in front of party 1,
/// waits for the fault, and returns the parties' errors. Replicated sharing reshares from
/// party i to party i-1, so the link from party 2 to party 1 is the first to reach the fault's
/// offset: party 1 must name party 2.
fn relayed_fault(name: &str, fault: Fault) -> Vec<String> {
    let cfg = init_cluster(name, "3pc", TIMEOUT_SECS);
    let relay = relay_in_front_of(&cfg, 1, fault);
    let kids: Vec<Child> = (0..3).map(|i| spawn_party(&cfg, i, &LOOP)).collect();
    let start = Instant::now();
    while !relay.fault_fired() {
        assert!(start.elapsed() < Duration::from_secs(60), "the fault never fired");
        std::thread::sleep(Duration::from_millis(10));
    }
    let errs = all_fail_cleanly(kids, Instant::now());
    drop(relay);
    errs
}

#[test]
fn a_dropped_connection_stops_every_party() {
    let errs = relayed_fault("drop", Fault::Drop { after: 4 << 20 });
    assert!(
        errs[1].contains("connection to party 2 failed: connection lost"),
        "party 1 names the sender on the cut link: {errs:?}"
    );
}

#[test]
fn a_stalled_link_times_out_naming_the_silent_peer() {
    let errs = relayed_fault("stall", Fault::Stall { after: 4 << 20 });
    assert!(errs[1].contains("error: party 2 sent nothing for 3s"), "party 1 waits on party 2: {errs:?}");
}

#[test]
fn a_corrupted_byte_on_the_wire_fails_the_tls_record() {
    let errs = relayed_fault("corrupt", Fault::Corrupt { at: 4 << 20 });
    assert!(errs[1].contains("connection to party 2 failed"), "party 1 names the sender: {errs:?}");
    assert!(errs[1].to_lowercase().contains("decrypt"), "and the cause: {errs:?}");
}

/// Party 2 as an authenticated peer that writes `bytes` raw on its link to party 1 (which
/// receives party 2's reshares) once the mesh is up; parties 0 and 1 run the comparison loop
/// as processes.
fn hostile_party_2(name: &str, bytes: Vec<u8>, then_disconnect: bool) -> Vec<String> {
    let cfg = init_cluster(name, "3pc", TIMEOUT_SECS);
    let kids: Vec<Child> = (0..2).map(|i| spawn_party(&cfg, i, &LOOP)).collect();
    let mut hostile = TlsTransport::connect(hostile_config(&cfg)).expect("mesh");
    // An authenticated party passes the set-up agreement (it echoes the job description the
    // honest parties send), then misbehaves.
    let description = hostile.recv(0).expect("party 0's job description");
    hostile.recv(1).expect("party 1's job description");
    hostile.send(0, description.clone()).unwrap();
    hostile.send(1, description).unwrap();
    // (The description was frame 0 on the link to party 1: the raw frames below start at 1.)
    hostile.send_raw_for_fault_tests(1, bytes).unwrap();
    let sent = Instant::now();
    if then_disconnect {
        drop(hostile);
        return all_fail_cleanly(kids, sent);
    }
    let errs = all_fail_cleanly(kids, sent);
    drop(hostile);
    errs
}

fn hostile_config(cfg: &Path) -> TlsConfig {
    let dir = cfg.parent().unwrap();
    let file = parse_cluster(&std::fs::read_to_string(cfg).unwrap()).unwrap();
    let parties = file
        .party
        .iter()
        .map(|p| (p.address.clone(), std::fs::read_to_string(dir.join(&p.certificate)).unwrap()))
        .collect();
    let key = std::fs::read_to_string(dir.join("party2.key")).unwrap();
    let mut c = TlsConfig::from_pem(2, parties, &key).unwrap();
    c.timeout = Duration::from_secs(TIMEOUT_SECS);
    c
}

fn frame(kind: FrameKind, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut f = FrameHeader { kind, len: payload.len() as u32, seq }.encode().to_vec();
    f.extend_from_slice(payload);
    f
}

/// Both honest parties fail (checked by `all_fail_cleanly`); party 1, which received the bad
/// bytes, names party 2 and one of the `causes`. Party 0 usually relays party 1's abort (naming
/// party 2 too) but may report party 1's departure first: both name a peer and a cause.
fn assert_blamed(errs: &[String], causes: &[&str]) {
    let e = &errs[1];
    assert!(e.contains("party 2"), "should name party 2: {e}");
    assert!(causes.iter().any(|c| e.contains(c)), "should say one of {causes:?}: {e}");
    assert!(errs[0].contains("party 2") || errs[0].contains("party 1"), "{}", errs[0]);
}

#[test]
fn an_oversized_frame_is_refused_before_allocation() {
    let mut f = frame(FrameKind::Data, 1, &[]);
    f[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_blamed(&hostile_party_2("oversized", f, false), &["exceeds"]);
}

#[test]
fn a_truncated_frame_is_reported() {
    let mut f = frame(FrameKind::Data, 1, &[7; 100]);
    f.truncate(16 + 40);
    // Party 1 reads the partial frame; party 0 may first find party 2's links closed.
    let errs = hostile_party_2("truncated", f, true);
    assert!(errs[1].contains("frame truncated"), "{errs:?}");
    assert_blamed(&errs, &["frame truncated", "party 2 disconnected"]);
}

#[test]
fn a_corrupt_frame_header_is_reported() {
    let mut f = frame(FrameKind::Data, 1, &[0; 8]);
    f[2] = 0xff;
    assert_blamed(&hostile_party_2("corrupt-header", f, false), &["corrupt frame header"]);
}

#[test]
fn a_replayed_frame_is_refused() {
    // A well-formed notice, then the same frame again: its sequence number is stale.
    let notice = frame(FrameKind::Waiting, 1, &1u32.to_le_bytes());
    let bytes = [notice.clone(), notice].concat();
    assert_blamed(&hostile_party_2("replay", bytes, false), &["replayed"]);
}

#[test]
fn a_message_that_does_not_fit_the_round_is_refused() {
    // A well-formed frame whose content is not what this round expects from party 2.
    let mut payload = 1u64.to_le_bytes().to_vec();
    payload.extend_from_slice(&[1, 2, 3]);
    assert_blamed(
        &hostile_party_2("wrong-round", frame(FrameKind::Data, 1, &payload), false),
        &["malformed message from party 2: expected"],
    );
}
