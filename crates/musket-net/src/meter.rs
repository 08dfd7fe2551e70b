use crate::{NetError, Transport};

/// Bytes of round metadata in front of every message.
const TAG_LEN: usize = 8;

/// Ring elements per message (64 MiB): large tensors go as several messages in one round.
pub const CHUNK_WORDS: usize = 1 << 23;

/// Communication counts of one party. Bytes are protocol payload bytes: the 8-byte round tag
/// of each message, the 16-byte TCP frame header and TLS record overhead are not counted, so
/// in-process and TCP runs report the same numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommStats {
    /// Payload bytes sent, to all peers.
    pub bytes_sent: u64,
    /// Payload bytes received, from all peers.
    pub bytes_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Communication rounds: the depth of the longest chain of dependent messages that ends at
    /// this party (a Lamport clock carried by every message). An exchange in which every party
    /// sends and then receives is one round; a message forwarded after being received adds one.
    /// Traffic with preprocessing peers (the dealer) does not count.
    pub rounds: u64,
    /// Payload bytes sent to preprocessing peers (the dealer's correlated randomness traffic,
    /// which could run before the inputs exist), included in `bytes_sent`.
    pub preprocessing_bytes_sent: u64,
    /// Payload bytes sent to each party, indexed by party id.
    pub bytes_sent_to: Vec<u64>,
    /// Time spent on input-independent correlated randomness: blocked on messages from
    /// preprocessing peers (the dealer), plus the PRG expansion that back ends report with
    /// [`Net::add_preprocessing_time`]. A run whose material was produced ahead of time would
    /// not spend it online.
    pub preprocessing_time: std::time::Duration,
}

impl CommStats {
    /// The counts accumulated between `earlier` and `self`.
    pub fn since(&self, earlier: &CommStats) -> CommStats {
        CommStats {
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
            messages_sent: self.messages_sent.saturating_sub(earlier.messages_sent),
            rounds: self.rounds.saturating_sub(earlier.rounds),
            preprocessing_bytes_sent: self
                .preprocessing_bytes_sent
                .saturating_sub(earlier.preprocessing_bytes_sent),
            bytes_sent_to: self
                .bytes_sent_to
                .iter()
                .zip(earlier.bytes_sent_to.iter().chain(std::iter::repeat(&0)))
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            preprocessing_time: self.preprocessing_time.saturating_sub(earlier.preprocessing_time),
        }
    }
}

/// A message of `bytes` bytes where `want` ring elements were expected: the sender's fault.
fn wrong_length(peer: usize, want: usize, bytes: usize) -> NetError {
    NetError::Malformed { peer, reason: format!("expected {want} ring elements, got {bytes} bytes") }
}

/// Ring elements received by [`Net::recv_words`]: a slice of words, read in the received
/// message where it could be (see there).
#[derive(Debug)]
pub struct Words(WordsInner);

#[derive(Debug)]
enum WordsInner {
    /// A received frame (round tag, then the words) whose body is aligned for `u64`.
    Frame(Vec<u8>),
    /// Words copied out of one or more frames.
    Owned(Vec<u64>),
}

impl From<Vec<u64>> for Words {
    fn from(values: Vec<u64>) -> Self {
        Words(WordsInner::Owned(values))
    }
}

impl std::ops::Deref for Words {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        match &self.0 {
            // `recv_words` made a `Frame` only after checking that this cast succeeds.
            WordsInner::Frame(framed) => bytemuck::cast_slice(&framed[TAG_LEN..]),
            WordsInner::Owned(values) => values,
        }
    }
}

/// Where a channel's round clock stands ([`Net::clock`]): its rounds, and whether its last
/// operation was a send (the next send then starts no new round).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundClock {
    rounds: u64,
    sending: bool,
}

/// A second channel's counts since its last hand-over, and its clock ([`Net::hand_over`],
/// [`Net::take_over`]).
#[derive(Clone, Debug)]
pub struct HandOver {
    counts: CommStats,
    clock: RoundClock,
}

/// A metered connection to the other parties: what protocol code holds.
pub struct Net {
    transport: Box<dyn Transport>,
    stats: CommStats,
    sending: bool,
    preprocessing: Vec<bool>,
    /// The round tag of the last message from each peer: a sender's clock never goes back, so
    /// an older tag is a message from a wrong (earlier) round.
    last_tag_from: Vec<u64>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net").field("party", &self.party_id()).field("stats", &self.stats).finish()
    }
}

/// Serialises ring elements as little-endian bytes.
pub fn u64s_to_bytes(values: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 8);
    extend_le(&mut out, values);
    out
}

/// `values` as little-endian bytes: in place on little-endian machines (the memory layout),
/// a converted copy elsewhere. For hashing words without copying them first.
pub fn le_bytes(values: &[u64]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(values))
    } else {
        std::borrow::Cow::Owned(u64s_to_bytes(values))
    }
}

/// Appends `values` as little-endian bytes: one copy on little-endian machines (the wire
/// format is the memory layout), a per-element conversion elsewhere.
fn extend_le(out: &mut Vec<u8>, values: &[u64]) {
    if cfg!(target_endian = "little") {
        out.extend_from_slice(bytemuck::cast_slice(values));
    } else {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Parses little-endian ring elements; `None` if the length is not a multiple of 8.
pub fn bytes_to_u64s(bytes: &[u8]) -> Option<Vec<u64>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

impl Net {
    /// Wraps a transport.
    pub fn new(transport: Box<dyn Transport>) -> Self {
        let n = transport.n_parties();
        Self {
            transport,
            stats: CommStats { bytes_sent_to: vec![0; n], ..Default::default() },
            sending: false,
            preprocessing: vec![false; n],
            last_tag_from: vec![0; n],
        }
    }

    /// Marks the link to `peer` as preprocessing traffic: messages on it carry no round clock
    /// and are reported in `preprocessing_bytes_sent`.
    pub fn set_preprocessing_peer(&mut self, peer: usize) {
        if let Some(p) = self.preprocessing.get_mut(peer) {
            *p = true;
        }
    }

    /// This party's id.
    pub fn party_id(&self) -> usize {
        self.transport.party_id()
    }

    /// Number of parties on the transport.
    pub fn n_parties(&self) -> usize {
        self.transport.n_parties()
    }

    /// The counts so far.
    pub fn stats(&self) -> &CommStats {
        &self.stats
    }

    /// Sends raw bytes to party `to`.
    pub fn send_bytes(&mut self, to: usize, payload: &[u8]) -> Result<(), NetError> {
        let mut framed = Vec::with_capacity(TAG_LEN + payload.len());
        framed.extend_from_slice(&[0u8; TAG_LEN]);
        framed.extend_from_slice(payload);
        self.send_tagged(to, framed)
    }

    /// Sends a message whose first `TAG_LEN` bytes are reserved for the round tag.
    fn send_tagged(&mut self, to: usize, mut framed: Vec<u8>) -> Result<(), NetError> {
        let offline = self.preprocessing.get(to).copied().unwrap_or(false);
        if !offline && !self.sending {
            self.stats.rounds = self.stats.rounds.saturating_add(1);
            self.sending = true;
        }
        let tag = if offline { 0 } else { self.stats.rounds };
        framed[..TAG_LEN].copy_from_slice(&tag.to_le_bytes());
        let len = (framed.len() - TAG_LEN) as u64;
        self.transport.send(to, framed)?;
        self.stats.bytes_sent += len;
        self.stats.messages_sent += 1;
        if offline {
            self.stats.preprocessing_bytes_sent += len;
        }
        if let Some(slot) = self.stats.bytes_sent_to.get_mut(to) {
            *slot += len;
        }
        Ok(())
    }

    /// Counts `hops` rounds of an exchange with a preprocessing peer that the online phase
    /// waits on (malicious 2PC's MAC check with the dealer: a chain of `hops` messages, each
    /// depending on the one before), which its messages' missing round clock does not count.
    /// Both compute parties run it at the same point, so their clocks stay within a round of
    /// each other and meet again at their next exchange.
    pub fn count_preprocessing_exchange(&mut self, hops: u64) {
        self.stats.rounds = self.stats.rounds.saturating_add(hops);
        // The exchange ends with a message received: the next send starts a round.
        self.sending = false;
    }

    /// Adds time a back end spent expanding correlated randomness (see
    /// [`CommStats::preprocessing_time`]).
    pub fn add_preprocessing_time(&mut self, spent: std::time::Duration) {
        self.stats.preprocessing_time += spent;
    }

    /// Receives a message and returns it with its round tag still in front.
    fn recv_tagged(&mut self, from: usize) -> Result<Vec<u8>, NetError> {
        let from_dealer = self.preprocessing.get(from).copied().unwrap_or(false);
        let started = from_dealer.then(std::time::Instant::now);
        let framed = self.transport.recv(from)?;
        if let Some(t) = started {
            self.stats.preprocessing_time += t.elapsed();
        }
        if framed.len() < TAG_LEN {
            return Err(NetError::Malformed {
                peer: from,
                reason: "message shorter than its round tag".into(),
            });
        }
        let clock = u64::from_le_bytes(framed[..TAG_LEN].try_into().expect("8 bytes"));
        if !self.preprocessing.get(from).copied().unwrap_or(false) {
            if let Some(last) = self.last_tag_from.get_mut(from) {
                if clock < *last {
                    return Err(NetError::Malformed {
                        peer: from,
                        reason: format!(
                            "message from round {clock} arrived after one from round {last} \
                             (wrong round, replayed or reordered)"
                        ),
                    });
                }
                *last = clock;
            }
            self.sending = false;
            self.stats.rounds = self.stats.rounds.max(clock);
        }
        self.stats.bytes_received += (framed.len() - TAG_LEN) as u64;
        Ok(framed)
    }

    /// Receives raw bytes from party `from`.
    pub fn recv_bytes(&mut self, from: usize) -> Result<Vec<u8>, NetError> {
        let mut framed = self.recv_tagged(from)?;
        framed.drain(..TAG_LEN);
        Ok(framed)
    }

    /// Sends ring elements to party `to`, split into messages of at most [`CHUNK_WORDS`]
    /// words so that tensors of any size fit the frame limit.
    pub fn send_u64s(&mut self, to: usize, values: &[u64]) -> Result<(), NetError> {
        let mut chunks = values.chunks(CHUNK_WORDS).peekable();
        if chunks.peek().is_none() {
            return self.send_tagged(to, vec![0u8; TAG_LEN]);
        }
        for chunk in chunks {
            let mut framed = Vec::with_capacity(TAG_LEN + chunk.len() * 8);
            framed.extend_from_slice(&[0u8; TAG_LEN]);
            extend_le(&mut framed, chunk);
            self.send_tagged(to, framed)?;
        }
        Ok(())
    }

    /// Receives exactly `expected` ring elements from party `from`, as sent by
    /// [`Net::send_u64s`]; any other length is a malformed message from that peer.
    pub fn recv_u64s(&mut self, from: usize, expected: usize) -> Result<Vec<u64>, NetError> {
        let mut out = Vec::with_capacity(expected.min(CHUNK_WORDS));
        loop {
            let want = (expected - out.len()).min(CHUNK_WORDS);
            let framed = self.recv_tagged(from)?;
            let body = &framed[TAG_LEN..];
            if body.len() != want * 8 {
                return Err(wrong_length(from, want, body.len()));
            }
            match bytemuck::try_cast_slice::<u8, u64>(body) {
                // An aligned body on a little-endian machine is the words already.
                Ok(words) if cfg!(target_endian = "little") => out.extend_from_slice(words),
                _ => out
                    .extend(body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))),
            }
            if out.len() == expected {
                return Ok(out);
            }
        }
    }

    /// Sends `n` ring elements that `fill` writes straight into the outgoing message, as
    /// [`Net::send_u64s`] would send them: protocol code that computes a message element by
    /// element saves the copy of a vector into the frame (on a little-endian machine with an
    /// aligned frame; otherwise, and for messages over [`CHUNK_WORDS`], it goes through one).
    pub fn send_u64s_with(
        &mut self,
        to: usize,
        n: usize,
        fill: impl FnOnce(&mut [u64]),
    ) -> Result<(), NetError> {
        if n > 0 && n <= CHUNK_WORDS && cfg!(target_endian = "little") {
            let mut framed = vec![0u8; TAG_LEN + n * 8];
            if let Ok(words) = bytemuck::try_cast_slice_mut::<u8, u64>(&mut framed[TAG_LEN..]) {
                fill(words);
                return self.send_tagged(to, framed);
            }
        }
        let mut values = vec![0u64; n];
        fill(&mut values);
        self.send_u64s(to, &values)
    }

    /// Receives exactly `expected` ring elements from party `from`, as [`Net::recv_u64s`]
    /// does, but reads them in the received message itself where it can (one message, a
    /// little-endian machine, an aligned body): no copy into a new vector.
    pub fn recv_words(&mut self, from: usize, expected: usize) -> Result<Words, NetError> {
        if expected == 0 || expected > CHUNK_WORDS || !cfg!(target_endian = "little") {
            return self.recv_u64s(from, expected).map(Words::from);
        }
        let framed = self.recv_tagged(from)?;
        let body = &framed[TAG_LEN..];
        if body.len() != expected * 8 {
            return Err(wrong_length(from, expected, body.len()));
        }
        if bytemuck::try_cast_slice::<u8, u64>(body).is_ok() {
            return Ok(Words(WordsInner::Frame(framed)));
        }
        let values =
            body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        Ok(Words(WordsInner::Owned(values)))
    }

    /// A metered second channel on the same links ([`Transport::second_channel`]), for an
    /// exchange that runs beside this one's (the malicious back end's proofs, in the
    /// background): its counts start at zero, and [`Net::start_at`], [`Net::hand_over`] and
    /// [`Net::take_over`] tie its round clock to this one's. `None` once taken, or on
    /// a transport without one.
    pub fn second_channel(&mut self) -> Option<Net> {
        let mut net = Net::new(self.transport.second_channel()?);
        net.preprocessing = self.preprocessing.clone();
        Some(net)
    }

    /// Where this channel's round clock stands, for a second channel's next exchange
    /// ([`Net::start_at`]), which may run on another thread.
    pub fn clock(&self) -> RoundClock {
        RoundClock { rounds: self.stats.rounds, sending: self.sending }
    }

    /// Starts this (second) channel's next exchange at `clock`, a party's ([`Net::clock`]):
    /// its messages depend on everything the party had sent and received by then. A clock
    /// behind this channel's own (an exchange queued behind another) changes nothing. Run
    /// right after the party's clock was read, an exchange counts exactly the rounds it
    /// would on the party's channel.
    pub fn start_at(&mut self, clock: RoundClock) {
        // A receive on either side since the clocks last met starts a new round at the next send.
        if clock.rounds > self.stats.rounds {
            self.stats.rounds = clock.rounds;
            self.sending = clock.sending;
        } else if clock.rounds == self.stats.rounds {
            self.sending &= clock.sending;
        }
    }

    /// This (second) channel's bytes and messages since its last hand-over, and its clock,
    /// for [`Net::take_over`] on the party's channel; its counts restart from zero.
    pub fn hand_over(&mut self) -> HandOver {
        let clock = self.clock();
        let fresh = CommStats {
            bytes_sent_to: vec![0; self.stats.bytes_sent_to.len()],
            rounds: clock.rounds,
            ..Default::default()
        };
        HandOver { counts: std::mem::replace(&mut self.stats, fresh), clock }
    }

    /// Adds a second channel's bytes and messages ([`Net::hand_over`]) to this channel's
    /// counts and joins the round clocks: what this channel sends next depends on that
    /// exchange too (the longer chain of the two counts).
    pub fn take_over(&mut self, h: HandOver) {
        let (s, m) = (h.counts, &mut self.stats);
        m.bytes_sent += s.bytes_sent;
        m.bytes_received += s.bytes_received;
        m.messages_sent += s.messages_sent;
        m.preprocessing_bytes_sent += s.preprocessing_bytes_sent;
        m.preprocessing_time += s.preprocessing_time;
        for (to, sent) in m.bytes_sent_to.iter_mut().zip(s.bytes_sent_to) {
            *to += sent;
        }
        // A receive on either side since the clocks last met starts a new round at the next send.
        if h.clock.rounds > m.rounds {
            m.rounds = h.clock.rounds;
            self.sending = h.clock.sending;
        } else if h.clock.rounds == m.rounds {
            self.sending &= h.clock.sending;
        }
    }

    /// Tells every peer this party is stopping; the reason must hold no secret values.
    pub fn abort(&mut self, reason: &str) {
        self.transport.abort(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local_mesh;

    /// The bytes read in place are the serialised ones, whatever the machine's byte order.
    #[test]
    fn words_as_bytes_in_place_are_their_little_endian_serialisation() {
        let words = [0u64, 1, 0x0102_0304_0506_0708, u64::MAX];
        assert_eq!(&*le_bytes(&words), &u64s_to_bytes(&words)[..]);
        assert_eq!(&le_bytes(&words)[16..24], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert!(le_bytes(&[]).is_empty());
    }

    #[test]
    fn large_tensors_travel_in_chunks_in_one_round() {
        let mut mesh = local_mesh(2, None).into_iter();
        let (mut a, mut b) =
            (Net::new(Box::new(mesh.next().unwrap())), Net::new(Box::new(mesh.next().unwrap())));
        let big: Vec<u64> = (0..(CHUNK_WORDS as u64 + 3)).collect();
        a.send_u64s(1, &big).unwrap();
        a.send_u64s(1, &[]).unwrap();
        assert_eq!(b.recv_u64s(0, big.len()).unwrap(), big);
        assert_eq!(b.recv_u64s(0, 0).unwrap(), Vec::<u64>::new());
        assert_eq!(a.stats().messages_sent, 3);
        assert_eq!(a.stats().bytes_sent, big.len() as u64 * 8);
        assert_eq!(a.stats().rounds, 1);
        assert_eq!(b.stats().rounds, 1);
        // A length the receiver does not expect is the sender's fault.
        a.send_u64s(1, &[1, 2, 3]).unwrap();
        assert!(matches!(b.recv_u64s(0, 2), Err(NetError::Malformed { peer: 0, .. })));
    }

    #[test]
    fn words_written_and_read_in_place_match_the_copying_calls() {
        let mut mesh = local_mesh(2, None).into_iter();
        let (mut a, mut b) =
            (Net::new(Box::new(mesh.next().unwrap())), Net::new(Box::new(mesh.next().unwrap())));
        let values: Vec<u64> = (0..1000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
        let big: Vec<u64> = (0..(CHUNK_WORDS as u64 + 3)).collect();
        a.send_u64s_with(1, values.len(), |out| out.copy_from_slice(&values)).unwrap();
        a.send_u64s(1, &values).unwrap();
        a.send_u64s_with(1, 0, |_| {}).unwrap();
        a.send_u64s_with(1, big.len(), |out| out.copy_from_slice(&big)).unwrap();
        assert_eq!(b.recv_u64s(0, values.len()).unwrap(), values);
        assert_eq!(&*b.recv_words(0, values.len()).unwrap(), values.as_slice());
        assert!(b.recv_words(0, 0).unwrap().is_empty());
        assert_eq!(*b.recv_words(0, big.len()).unwrap(), big[..]);
        assert_eq!(a.stats().bytes_sent, (2 * values.len() + big.len()) as u64 * 8);
        assert_eq!(b.stats().bytes_received, a.stats().bytes_sent);
        // A length the receiver does not expect is the sender's fault.
        a.send_u64s_with(1, 3, |out| out.fill(1)).unwrap();
        assert!(matches!(b.recv_words(0, 2), Err(NetError::Malformed { peer: 0, .. })));
    }

    #[test]
    fn an_exchange_on_the_second_channel_counts_as_on_the_first() {
        // One party sends, the other answers, then the first sends again: three rounds, on
        // one channel or with the middle exchange on the second.
        let run = |second: bool| -> (CommStats, CommStats) {
            let mut mesh = local_mesh(2, None);
            let mut b = Net::new(Box::new(mesh.pop().unwrap()));
            let mut a = Net::new(Box::new(mesh.pop().unwrap()));
            let (mut a2, mut b2) = (a.second_channel().unwrap(), b.second_channel().unwrap());
            a.send_u64s(1, &[1]).unwrap();
            b.recv_u64s(0, 1).unwrap();
            if second {
                a2.start_at(a.clock());
                b2.start_at(b.clock());
                b2.send_u64s(0, &[2, 2]).unwrap();
                a2.recv_u64s(1, 2).unwrap();
                a.take_over(a2.hand_over());
                b.take_over(b2.hand_over());
            } else {
                b.send_u64s(0, &[2, 2]).unwrap();
                a.recv_u64s(1, 2).unwrap();
            }
            a.send_u64s(1, &[3]).unwrap();
            b.recv_u64s(0, 1).unwrap();
            (a.stats().clone(), b.stats().clone())
        };
        let (one, two) = (run(false), run(true));
        assert_eq!(one, two);
        assert_eq!(
            (one.0.rounds, one.0.bytes_sent, one.0.bytes_received, one.0.messages_sent),
            (3, 16, 16, 2)
        );
    }

    #[test]
    fn a_message_from_an_earlier_round_is_refused() {
        let mut mesh = local_mesh(2, None).into_iter();
        let mut a = mesh.next().unwrap();
        let mut b = Net::new(Box::new(mesh.next().unwrap()));
        let tagged = |round: u64| {
            let mut m = round.to_le_bytes().to_vec();
            m.extend_from_slice(&7u64.to_le_bytes());
            m
        };
        a.send(1, tagged(4)).unwrap();
        a.send(1, tagged(4)).unwrap();
        a.send(1, tagged(2)).unwrap();
        assert_eq!(b.recv_u64s(0, 1).unwrap(), vec![7]);
        assert_eq!(b.recv_u64s(0, 1).unwrap(), vec![7], "the same round twice is fine (chunks)");
        let err = b.recv_u64s(0, 1).unwrap_err();
        assert!(matches!(err, NetError::Malformed { peer: 0, .. }), "{err}");
        assert!(err.to_string().contains("round 2 arrived after one from round 4"), "{err}");
    }
}
