//! Three hosts: a 3PC inference with each party in its own Linux network namespace, joined by
//! veth pairs on a bridge, so every byte crosses a (virtual) network between separate network
//! stacks. The test builds the namespaces itself and is skipped, saying so, where it cannot
//! (not root, no `ip`, no netns support).

mod common;

use common::*;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Namespaces, veth pairs and a bridge, removed on drop.
struct Hosts {
    tag: String,
    subnet: String,
    n: usize,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), text(&o.stderr).trim()))
    }
}

impl Hosts {
    fn new(n: usize) -> Result<Hosts, String> {
        let pid = std::process::id();
        // Short names: interface names are limited to 15 bytes.
        let tag = format!("mk{}", pid % 100_000);
        let subnet = format!("10.{}.{}", 200 + pid % 50, (pid / 50) % 250);
        // Dropped on any error below: removes whatever was made (deleting a missing one is a no-op).
        let hosts = Hosts { tag, subnet, n };
        let br = format!("{}br", hosts.tag);
        ip(&["link", "add", &br, "type", "bridge"])?;
        ip(&["link", "set", &br, "up"])?;
        for i in 0..n {
            let (ns, host_end, ns_end) = hosts.names(i);
            ip(&["netns", "add", &ns])?;
            ip(&["link", "add", &host_end, "type", "veth", "peer", "name", &ns_end])?;
            ip(&["link", "set", &ns_end, "netns", &ns])?;
            ip(&["link", "set", &host_end, "master", &br, "up"])?;
            let addr = format!("{}/24", hosts.address(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &ns_end])?;
            ip(&["-n", &ns, "link", "set", &ns_end, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }

    fn names(&self, i: usize) -> (String, String, String) {
        (format!("{}-{i}", self.tag), format!("{}h{i}", self.tag), format!("{}n{i}", self.tag))
    }

    fn address(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    /// Runs `musket args…` inside host `i`'s namespace.
    fn spawn(&self, i: usize, args: &[&str]) -> Child {
        let ns = self.names(i).0;
        Command::new("ip")
            .args(["netns", "exec", &ns, BIN])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for i in 0..self.n {
            let (ns, host_end, _) = self.names(i);
            let _ = ip(&["netns", "del", &ns]);
            let _ = ip(&["link", "del", &host_end]);
        }
        let _ = ip(&["link", "del", &format!("{}br", self.tag)]);
    }
}

#[test]
fn inference_with_each_party_in_its_own_network_namespace() {
    let hosts = match Hosts::new(3) {
        Ok(h) => h,
        Err(why) => {
            eprintln!("SKIPPED: cannot create network namespaces here ({why})");
            return;
        }
    };
    let (model, input) = cnn_model_and_sample();
    // One cluster file for all hosts: party i at its own namespace's address.
    let cfg = init_cluster("netns", "3pc", 30);
    let mut table: toml::Table = std::fs::read_to_string(&cfg).unwrap().parse().unwrap();
    for p in table["party"].as_array_mut().unwrap() {
        let id = p["id"].as_integer().unwrap() as usize;
        p.as_table_mut().unwrap().insert("address".into(), format!("{}:7100", hosts.address(id)).into());
    }
    std::fs::write(&cfg, toml::to_string(&table).unwrap()).unwrap();
    let party = |id: usize, job: &[&str]| {
        let id = id.to_string();
        let mut args = vec!["party", "--config", cfg.to_str().unwrap(), "--id", &id, "--json"];
        args.extend_from_slice(job);
        hosts.spawn(id.parse().unwrap(), &args)
    };
    let kids = vec![
        party(0, &["infer", "--model", &model]),
        party(1, &["infer", "--input", &input]),
        party(2, &["infer"]),
    ];
    let outs: Vec<Output> = kids.into_iter().map(|k| wait_bounded(k, Duration::from_secs(90))).collect();
    let v: Vec<serde_json::Value> = outs.iter().map(json).collect();
    assert_cnn_sample_logits(&v[1], "netns");
    assert!(v[0].get("output").is_none() && v[2].get("output").is_none());
}
