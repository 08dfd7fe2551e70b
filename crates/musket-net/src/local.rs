//! In-process transport: parties are threads of one process, linked by unbounded channels.

use crate::{NetError, Transport, DEFAULT_TIMEOUT};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

enum Message {
    Data(Vec<u8>),
    Abort(String),
}

/// One party's end of an in-process mesh.
pub struct LocalTransport {
    id: usize,
    to: Vec<Option<Sender<Message>>>,
    from: Vec<Option<Receiver<Message>>>,
    timeout: Duration,
}

/// Builds a fully connected mesh of `n` parties; element `i` belongs to party `i`. A `timeout`
/// of `None` uses [`DEFAULT_TIMEOUT`].
pub fn local_mesh(n: usize, timeout: Option<Duration>) -> Vec<LocalTransport> {
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut parties: Vec<LocalTransport> = (0..n)
        .map(|id| LocalTransport {
            id,
            to: (0..n).map(|_| None).collect(),
            from: (0..n).map(|_| None).collect(),
            timeout,
        })
        .collect();
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let (tx, rx) = channel();
                parties[i].to[j] = Some(tx);
                parties[j].from[i] = Some(rx);
            }
        }
    }
    parties
}

impl Transport for LocalTransport {
    fn party_id(&self) -> usize {
        self.id
    }

    fn n_parties(&self) -> usize {
        self.to.len()
    }

    fn send(&mut self, to: usize, payload: Vec<u8>) -> Result<(), NetError> {
        let tx = self.to.get(to).and_then(Option::as_ref).ok_or(NetError::BadParty(to))?;
        tx.send(Message::Data(payload)).map_err(|_| NetError::Disconnected { peer: to })
    }

    fn recv(&mut self, from: usize) -> Result<Vec<u8>, NetError> {
        let rx = self.from.get(from).and_then(Option::as_ref).ok_or(NetError::BadParty(from))?;
        match rx.recv_timeout(self.timeout) {
            Ok(Message::Data(d)) => Ok(d),
            Ok(Message::Abort(reason)) => Err(NetError::Aborted { peer: from, reason }),
            Err(RecvTimeoutError::Timeout) => {
                Err(NetError::Timeout { peer: from, after: self.timeout })
            }
            Err(RecvTimeoutError::Disconnected) => Err(NetError::Disconnected { peer: from }),
        }
    }

    fn abort(&mut self, reason: &str) {
        for tx in self.to.iter().flatten() {
            let _ = tx.send(Message::Abort(reason.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_delivery_timeout_and_disconnect() {
        let mut mesh = local_mesh(3, Some(Duration::from_millis(50)));
        let mut p2 = mesh.pop().unwrap();
        let mut p1 = mesh.pop().unwrap();
        let mut p0 = mesh.pop().unwrap();
        p0.send(1, vec![1]).unwrap();
        p0.send(1, vec![2, 3]).unwrap();
        assert_eq!(p1.recv(0).unwrap(), vec![1]);
        assert_eq!(p1.recv(0).unwrap(), vec![2, 3]);
        assert!(matches!(p1.recv(2), Err(NetError::Timeout { peer: 2, .. })));
        p2.abort("input shape mismatch");
        assert_eq!(
            p1.recv(2),
            Err(NetError::Aborted { peer: 2, reason: "input shape mismatch".into() })
        );
        drop(p2);
        // The abort went to every peer; after it, the closed channel reads as a disconnect.
        assert!(matches!(p0.recv(2), Err(NetError::Aborted { peer: 2, .. })));
        assert_eq!(p0.recv(2), Err(NetError::Disconnected { peer: 2 }));
        assert_eq!(p0.send(0, vec![]), Err(NetError::BadParty(0)));
    }
}
