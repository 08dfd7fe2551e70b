//! In-process transport: parties are threads of one process, linked by unbounded channels.

use crate::inbox::{into_result, Event, Inbox, DEPARTURE_GRACE};
use crate::{NetError, Transport, DEFAULT_TIMEOUT};
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

/// Links from one party to every other party's inbox (none to itself).
type Links = Vec<Option<Sender<(usize, Event)>>>;

/// One party's end of an in-process mesh.
pub struct LocalTransport {
    id: usize,
    to: Links,
    inbox: Inbox,
    /// The links of the other channel (the second's, or the first's for the second), which
    /// an abort also goes down, as an abort frame on a TCP link reaches both channels.
    other_channel: Links,
    /// The second channel, until taken.
    second: Option<Box<LocalTransport>>,
    /// Whether this is a second channel: it sends no waiting notices, as over TLS (a
    /// stall there names the peer waited on), and its departure is not the party's.
    is_second: bool,
}

/// Builds a fully connected mesh of `n` parties; element `i` belongs to party `i`. A `timeout`
/// of `None` uses [`DEFAULT_TIMEOUT`]. Each end holds a second channel
/// ([`Transport::second_channel`]): a mesh of its own, whose aborts reach the first's.
pub fn local_mesh(n: usize, timeout: Option<Duration>) -> Vec<LocalTransport> {
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    let (first, first_inboxes): (Vec<_>, Vec<_>) = (0..n).map(|_| channel()).unzip();
    let (second, second_inboxes): (Vec<_>, Vec<_>) = (0..n).map(|_| channel()).unzip();
    let links = |senders: &[Sender<(usize, Event)>], id: usize| -> Links {
        (0..n).map(|j| (j != id).then(|| senders[j].clone())).collect()
    };
    first_inboxes
        .into_iter()
        .zip(second_inboxes)
        .enumerate()
        .map(|(id, (rx, rx2))| LocalTransport {
            id,
            to: links(&first, id),
            inbox: Inbox::new(rx, id, n, timeout),
            other_channel: links(&second, id),
            is_second: false,
            second: Some(Box::new(LocalTransport {
                id,
                to: links(&second, id),
                inbox: Inbox::new(rx2, id, n, timeout),
                other_channel: links(&first, id),
                second: None,
                is_second: true,
            })),
        })
        .collect()
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
        if tx.send((self.id, Event::Data(payload))).is_ok() {
            return Ok(());
        }
        // The peer has gone; if a third party's abort explains why, report that instead.
        match self.inbox.fatal_within(DEPARTURE_GRACE) {
            Some(cause) => into_result(cause).map(|_| ()),
            None => Err(NetError::Disconnected { peer: to }),
        }
    }

    fn recv(&mut self, from: usize) -> Result<Vec<u8>, NetError> {
        if from == self.id {
            return Err(NetError::BadParty(from));
        }
        let (id, to, quiet) = (self.id, &self.to, self.is_second);
        self.inbox.recv(from, &mut |on| {
            for tx in to.iter().flatten().filter(|_| !quiet) {
                let _ = tx.send((id, Event::Waiting(on)));
            }
        })
    }

    fn abort(&mut self, reason: &str) {
        for tx in self.to.iter().chain(&self.other_channel).flatten() {
            let _ = tx.send((
                self.id,
                Event::Failed(NetError::Aborted { peer: self.id, reason: reason.to_string() }),
            ));
        }
    }

    fn second_channel(&mut self) -> Option<Box<dyn Transport>> {
        self.second.take().map(|t| t as Box<dyn Transport>)
    }
}

impl Drop for LocalTransport {
    // A thread that ends (or panics) closes its links, as a process's sockets close: the
    // first channel's end closes the second channel's too (over TCP they are the same
    // connections); the second's closes only its own.
    fn drop(&mut self) {
        let second: &[Option<Sender<(usize, Event)>>] =
            if self.is_second { &[] } else { &self.other_channel };
        for tx in self.to.iter().chain(second).flatten() {
            let _ = tx.send((self.id, Event::Failed(NetError::Disconnected { peer: self.id })));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_delivery_timeout_disconnect_and_fail_fast() {
        let mut mesh = local_mesh(3, Some(Duration::from_millis(50)));
        let mut p2 = mesh.pop().unwrap();
        let mut p1 = mesh.pop().unwrap();
        let mut p0 = mesh.pop().unwrap();
        p0.send(1, vec![1]).unwrap();
        p2.send(1, vec![9]).unwrap();
        p0.send(1, vec![2, 3]).unwrap();
        assert_eq!(p1.recv(0).unwrap(), vec![1]);
        assert_eq!(p1.recv(0).unwrap(), vec![2, 3]);
        assert_eq!(p1.recv(2).unwrap(), vec![9]);
        assert!(matches!(p1.recv(2), Err(NetError::Timeout { peer: 2, .. })));
        // An abort from party 2 ends a receive that waits on party 0.
        p2.abort("input shape mismatch");
        assert_eq!(p1.recv(0), Err(NetError::Aborted { peer: 2, reason: "input shape mismatch".into() }));
        // A clean departure only fails receives from the departed party.
        let mut p0b = p0;
        drop(p2);
        p1.send(0, vec![5]).unwrap();
        assert!(matches!(p0b.recv(2), Err(NetError::Aborted { peer: 2, .. })));
        assert_eq!(p0b.recv(2), Err(NetError::Disconnected { peer: 2 }));
        assert_eq!(p0b.recv(1).unwrap(), vec![5]);
        assert_eq!(p0b.send(0, vec![]), Err(NetError::BadParty(0)));
    }

    #[test]
    fn the_second_channel_is_independent_and_aborts_reach_both() {
        let mut mesh = local_mesh(3, Some(Duration::from_millis(50)));
        let mut p2 = mesh.pop().unwrap();
        let mut p1 = mesh.pop().unwrap();
        let mut p0 = mesh.pop().unwrap();
        let mut q0 = p0.second_channel().unwrap();
        let mut q1 = p1.second_channel().unwrap();
        let mut q2 = p2.second_channel().unwrap();
        assert!(p0.second_channel().is_none(), "taken once");
        // Messages on one channel are not seen on the other, in either order.
        q0.send(1, vec![7]).unwrap();
        p0.send(1, vec![1]).unwrap();
        assert_eq!(p1.recv(0).unwrap(), vec![1]);
        assert_eq!(q1.recv(0).unwrap(), vec![7]);
        assert!(matches!(q1.recv(0), Err(NetError::Timeout { .. })));
        // An abort on the second channel stops a receive on the first, and the reverse.
        q2.abort("cheating detected: test");
        assert!(matches!(p1.recv(0), Err(NetError::Aborted { peer: 2, .. })));
        p2.abort("stopping");
        assert!(matches!(q0.recv(1), Err(NetError::Aborted { peer: 2, .. })));
    }

    #[test]
    fn two_parties_waiting_on_each_other_blame_the_link_not_themselves() {
        let mut mesh = local_mesh(2, Some(Duration::from_millis(300)));
        let mut p1 = mesh.pop().unwrap();
        let mut p0 = mesh.pop().unwrap();
        // Party 1 is handed back, not dropped, so that its departure cannot race the timeout.
        let other = std::thread::spawn(move || (p1.recv(0).unwrap_err(), p1));
        let err = p0.recv(1).unwrap_err();
        let (err1, _p1) = other.join().unwrap();
        for e in [err, err1] {
            let text = e.to_string();
            assert!(matches!(e, NetError::Timeout { waits_on_us: true, .. }), "{text}");
            assert!(text.contains("reports waiting on us"), "{text}");
        }
    }
}
