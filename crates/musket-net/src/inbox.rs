//! One queue of incoming events per party, shared by all links, so that a receive waiting on
//! one peer learns at once that another peer aborted or sent garbage (fail fast) instead of
//! waiting for its own timeout.

use crate::NetError;
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Something that arrived from a peer.
pub(crate) enum Event {
    /// A message.
    Data(Vec<u8>),
    /// The link failed or the peer aborted.
    Failed(NetError),
    /// The peer has been blocked for a while waiting on the given party.
    Waiting(usize),
}

impl Event {
    /// True for failures that end the computation whichever peer we are waiting on. A clean
    /// disconnect is not one: a party that has finished its part may leave early.
    fn is_fatal(&self) -> bool {
        matches!(self, Event::Failed(e) if !matches!(e, NetError::Disconnected { .. }))
    }
}

/// How long a receive that saw its peer leave waits for an abort that explains it.
pub(crate) const DEPARTURE_GRACE: Duration = Duration::from_millis(200);

pub(crate) struct Inbox {
    rx: Receiver<(usize, Event)>,
    pending: Vec<VecDeque<Event>>,
    /// What each peer last said it was blocked on (cleared when it sends data again).
    waiting_on: Vec<Option<usize>>,
    timeout: Duration,
    me: usize,
}

impl Inbox {
    pub(crate) fn new(rx: Receiver<(usize, Event)>, me: usize, n: usize, timeout: Duration) -> Self {
        Self {
            rx,
            pending: (0..n).map(|_| VecDeque::new()).collect(),
            waiting_on: vec![None; n],
            timeout,
            me,
        }
    }

    /// The next message from `from`. After a third of the timeout without it, calls
    /// `announce(from)` once so the transport can tell every peer what we are blocked on; on
    /// timeout, blames the end of the chain of parties blocked on each other (we wait on A, A
    /// said it waits on B, B said nothing: B stalled).
    pub(crate) fn recv(&mut self, from: usize, announce: &mut dyn FnMut(usize)) -> Result<Vec<u8>, NetError> {
        if from >= self.pending.len() {
            return Err(NetError::BadParty(from));
        }
        if let Some(ev) = self.pending[from].pop_front() {
            return self.explained(ev);
        }
        // A fatal event queued earlier from another peer still ends the computation.
        if let Some(ev) = self.take_fatal() {
            return into_result(ev);
        }
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut announce_at = Some(start + self.timeout / 3);
        loop {
            let now = Instant::now();
            if announce_at.is_some_and(|t| now >= t) {
                announce(from);
                announce_at = None;
            }
            let limit = announce_at.unwrap_or(deadline).min(deadline);
            match self.rx.recv_timeout(limit.saturating_duration_since(now)) {
                Ok((peer, Event::Waiting(on))) => {
                    if let Some(w) = self.waiting_on.get_mut(peer) {
                        *w = Some(on);
                    }
                }
                Ok((peer, ev)) if peer == from => {
                    self.waiting_on[peer] = None;
                    return self.explained(ev);
                }
                Ok((_, ev)) if ev.is_fatal() => return into_result(ev),
                Ok((peer, ev)) => match self.pending.get_mut(peer) {
                    Some(q) => {
                        self.waiting_on[peer] = None;
                        q.push_back(ev);
                    }
                    None => return Err(NetError::BadParty(peer)),
                },
                Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                    return Err(match self.culprit(from) {
                        // The chain of waits comes back to us: everyone is waiting, so messages
                        // on some link between us and `from` are not getting through.
                        None => NetError::Timeout {
                            peer: from,
                            after: self.timeout,
                            via: None,
                            waits_on_us: true,
                        },
                        Some(peer) => NetError::Timeout {
                            peer,
                            after: self.timeout,
                            via: (peer != from).then_some(from),
                            waits_on_us: false,
                        },
                    });
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(NetError::Disconnected { peer: from }),
            }
        }
    }

    /// The end of the chain of waits starting at `from`, or `None` if it leads back to us.
    fn culprit(&self, from: usize) -> Option<usize> {
        let mut at = from;
        for _ in 0..self.waiting_on.len() {
            match self.waiting_on[at] {
                Some(next) if next == self.me => return None,
                Some(next) if next != at && next < self.waiting_on.len() => at = next,
                _ => break,
            }
        }
        Some(at)
    }

    /// The result of a peer's event; a departure is first given a moment to be explained: a
    /// peer may have left because a third party aborted, and that abort can arrive a moment
    /// later. The cause is reported rather than the departure.
    fn explained(&mut self, ev: Event) -> Result<Vec<u8>, NetError> {
        if matches!(ev, Event::Failed(NetError::Disconnected { .. })) {
            if let Some(cause) = self.fatal_within(DEPARTURE_GRACE) {
                return into_result(cause);
            }
        }
        into_result(ev)
    }

    /// Waits up to `grace` for a fatal event from any peer, queueing whatever else arrives.
    pub(crate) fn fatal_within(&mut self, grace: Duration) -> Option<Event> {
        if let Some(ev) = self.take_fatal() {
            return Some(ev);
        }
        let deadline = Instant::now() + grace;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((_, ev)) if ev.is_fatal() => return Some(ev),
                Ok((_, Event::Waiting(_))) => {}
                Ok((peer, ev)) => {
                    if let Some(q) = self.pending.get_mut(peer) {
                        q.push_back(ev);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    fn take_fatal(&mut self) -> Option<Event> {
        for q in &mut self.pending {
            if let Some(pos) = q.iter().position(Event::is_fatal) {
                return q.remove(pos);
            }
        }
        None
    }
}

pub(crate) fn into_result(ev: Event) -> Result<Vec<u8>, NetError> {
    match ev {
        Event::Data(d) => Ok(d),
        Event::Failed(e) => Err(e),
        // Notices are consumed where they arrive and never queued.
        Event::Waiting(_) => Err(NetError::Setup("internal: waiting notice queued".into())),
    }
}
