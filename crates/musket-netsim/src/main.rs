//! `musket-netsim`: run relays that emulate LAN or WAN links (or inject one fault) between
//! Musket parties. See the crate documentation.

use anyhow::{bail, Context, Result};
use clap::Parser;
use musket_netsim::{Fault, LinkProfile, Relay};
use std::net::ToSocketAddrs;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "musket-netsim", about = "TCP relays with latency, bandwidth cap or a fault")]
struct Args {
    /// A relay, as LISTEN=TARGET (e.g. 10.77.0.1:7200=127.0.0.1:7100); repeat for more.
    #[arg(long = "link", required = true)]
    links: Vec<String>,
    /// One-way delay in milliseconds, each direction.
    #[arg(long, default_value_t = 0.0)]
    delay_ms: f64,
    /// Bandwidth cap per direction and connection, in megabits per second.
    #[arg(long)]
    rate_mbit: Option<f64>,
    /// Drop the first connection after this many bytes from its dialer.
    #[arg(long, conflicts_with_all = ["stall_after", "corrupt_at"])]
    drop_after: Option<u64>,
    /// Stall the first connection after this many bytes from its dialer.
    #[arg(long, conflicts_with = "corrupt_at")]
    stall_after: Option<u64>,
    /// Flip a bit of the byte at this offset of the first connection's dialer stream.
    #[arg(long)]
    corrupt_at: Option<u64>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.delay_ms.is_finite() && (0.0..=60_000.0).contains(&args.delay_ms)) {
        bail!("--delay-ms must be between 0 and 60000");
    }
    if let Some(r) = args.rate_mbit {
        if !(r.is_finite() && r > 0.0) {
            bail!("--rate-mbit must be positive");
        }
    }
    let profile = LinkProfile {
        delay: Duration::from_secs_f64(args.delay_ms / 1000.0),
        bytes_per_sec: args.rate_mbit.map(|r| r * 1e6 / 8.0),
    };
    let fault = match (args.drop_after, args.stall_after, args.corrupt_at) {
        (Some(after), _, _) => Some(Fault::Drop { after }),
        (_, Some(after), _) => Some(Fault::Stall { after }),
        (_, _, Some(at)) => Some(Fault::Corrupt { at }),
        _ => None,
    };
    let mut relays = Vec::new();
    for link in &args.links {
        let (listen, target) = link.split_once('=').context("--link must be LISTEN=TARGET")?;
        let target = target
            .to_socket_addrs()
            .with_context(|| format!("bad target {target}"))?
            .next()
            .with_context(|| format!("{target} resolves to nothing"))?;
        let relay = Relay::start(listen, target, profile, fault)
            .with_context(|| format!("cannot listen on {listen}"))?;
        eprintln!("relay {} -> {target}", relay.local_addr());
        relays.push(relay);
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
