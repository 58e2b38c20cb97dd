//! Identifiers, the journal summary, and the statuses users read in the Mirror Monitor.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Milliseconds on the member's own monotonic clock. Every timer derives from the `now`
/// passed to [`crate::mirror::failover::Member::step`].
pub type Millis = u64;

/// A takeover counter. Every takeover makes a new, larger epoch, durable before it is used.
/// Epochs are unique per member: `epoch % MAX_MEMBERS` is the index of the member that
/// created it, so two members can never pick the same epoch (see [`next_epoch`]).
pub type Epoch = u64;

/// A journal position (1-based; 0 means "empty journal").
pub type Position = u64;

/// The most members a mirror may have (two failover members plus fourteen asyncs).
pub const MAX_MEMBERS: u8 = 16;

/// The most epochs a journal summary from another process may list.
pub const MAX_SUMMARY_SEGMENTS: usize = 4096;

/// A member's index in the mirror configuration (`0..MAX_MEMBERS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub u8);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "member {}", self.0)
    }
}

/// The largest epoch any member or arbiter accepts, loads or creates. A takeover adds at
/// most `2 * MAX_MEMBERS` to the epoch, so this is trillions of takeovers away, and every
/// epoch arithmetic on accepted epochs stays far from `u64::MAX`.
pub const MAX_EPOCH: Epoch = 1 << 48;

/// How far above the highest epoch a process knows a received epoch may be. A mirror's
/// epoch grows by at most `2 * MAX_MEMBERS` per takeover, so this is 32,768 takeovers the
/// receiver missed: more is not a failover it slept through but a peer or arbiter that is
/// broken or hostile. Such an epoch is refused and logged, never saved.
pub const MAX_EPOCH_STEP: Epoch = 1 << 20;

/// An epoch received from a peer, an agent or the arbiter that is implausible: above
/// [`MAX_EPOCH`], or more than [`MAX_EPOCH_STEP`] above `known`, the highest epoch the
/// receiver knows (its own durable epoch, its journal's, the arbiter's it last heard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImplausibleEpoch {
    pub epoch: Epoch,
    pub known: Epoch,
}

impl fmt::Display for ImplausibleEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "implausible epoch {} refused: the highest epoch known here is {}, and an epoch may be at most {} above it and at most {}",
            self.epoch, self.known, MAX_EPOCH_STEP, MAX_EPOCH
        )
    }
}

/// Checks an epoch received from outside against `known` (see [`ImplausibleEpoch`]).
pub fn check_epoch(epoch: Epoch, known: Epoch) -> Result<(), ImplausibleEpoch> {
    let limit = known.saturating_add(MAX_EPOCH_STEP).min(MAX_EPOCH);
    if epoch <= limit {
        Ok(())
    } else {
        Err(ImplausibleEpoch { epoch, known })
    }
}

/// The smallest epoch larger than `after` that belongs to `member`. `after` is an epoch
/// this process accepted (at most [`MAX_EPOCH`] plus a few takeovers), so the arithmetic
/// cannot overflow; if it ever did, that is a broken invariant, not a wrapped epoch.
pub fn next_epoch(after: Epoch, member: MemberId) -> Epoch {
    assert!(member.0 < MAX_MEMBERS, "member index {} out of range", member.0);
    let step = u64::from(MAX_MEMBERS);
    (after / step)
        .checked_add(1)
        .and_then(|n| n.checked_mul(step))
        .and_then(|e| e.checked_add(u64::from(member.0)))
        .unwrap_or_else(|| panic!("epoch overflow after {after}: an unchecked epoch got in"))
}

/// What a member may become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// One of the two failover members: primary or backup.
    Failover,
    /// Disaster-recovery async: never promoted automatically; an operator may promote it.
    DrAsync,
    /// Reporting async: never promoted.
    ReportingAsync,
}

/// One member of the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberSpec {
    pub id: MemberId,
    pub kind: MemberKind,
}

/// A member's journal summarised by epoch: `(epoch, last position written in that epoch)`,
/// both increasing. Two journals that hold the same epoch at a position hold the same
/// record there and the same records before it (one writer per epoch), so the summary is
/// enough to find where two journals part ways.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalSummary {
    segments: Vec<(Epoch, Position)>,
}

impl JournalSummary {
    pub fn new() -> JournalSummary {
        JournalSummary::default()
    }

    /// Builds a summary from one epoch per record (record `i` is at position `i + 1`).
    pub fn from_records(epochs: &[Epoch]) -> JournalSummary {
        let mut s = JournalSummary::new();
        for (i, &e) in epochs.iter().enumerate() {
            s.push(e, i as Position + 1);
        }
        s
    }

    /// A summary from `(epoch, last position)` pairs, both strictly increasing (the caller
    /// checked them: this member's own state). Anything from another process goes through
    /// [`JournalSummary::checked`].
    pub fn from_segments(segments: &[(Epoch, Position)]) -> JournalSummary {
        JournalSummary { segments: segments.to_vec() }
    }

    /// A summary from pairs that came from another process (the data channel, an agent):
    /// at most [`MAX_SUMMARY_SEGMENTS`] pairs, positions from 1, epochs and positions both
    /// strictly increasing; otherwise why not.
    pub fn checked(segments: &[(Epoch, Position)]) -> Result<JournalSummary, String> {
        if segments.len() > MAX_SUMMARY_SEGMENTS {
            return Err(format!("a journal summary of {} epochs (at most {MAX_SUMMARY_SEGMENTS})", segments.len()));
        }
        let mut last = (None, 0);
        for &(epoch, pos) in segments {
            if pos <= last.1 || last.0.is_some_and(|e| epoch <= e) {
                return Err(format!("a journal summary that does not increase: ({epoch}, {pos}) after {last:?}"));
            }
            last = (Some(epoch), pos);
        }
        Ok(JournalSummary { segments: segments.to_vec() })
    }

    pub fn segments(&self) -> &[(Epoch, Position)] {
        &self.segments
    }

    /// The last position (0 when empty).
    pub fn end(&self) -> Position {
        self.segments.last().map_or(0, |s| s.1)
    }

    /// The epoch of the last record (0 when empty).
    pub fn last_epoch(&self) -> Epoch {
        self.segments.last().map_or(0, |s| s.0)
    }

    /// The epoch of the record at `pos`, if there is one.
    pub fn epoch_at(&self, pos: Position) -> Option<Epoch> {
        if pos == 0 {
            return None;
        }
        self.segments.iter().find(|s| s.1 >= pos).map(|s| s.0)
    }

    /// Records one more record of `epoch` at `pos` (must be `end() + 1`).
    pub fn push(&mut self, epoch: Epoch, pos: Position) {
        assert_eq!(pos, self.end() + 1, "journal positions are contiguous");
        assert!(epoch >= self.last_epoch(), "journal epochs never go back");
        match self.segments.last_mut() {
            Some(last) if last.0 == epoch => last.1 = pos,
            _ => self.segments.push((epoch, pos)),
        }
    }

    /// Drops every record after `to`.
    pub fn truncate(&mut self, to: Position) {
        let mut out = Vec::with_capacity(self.segments.len());
        let mut start = 1;
        for &(epoch, last) in &self.segments {
            if start > to {
                break;
            }
            out.push((epoch, last.min(to)));
            start = last + 1;
        }
        self.segments = out;
    }

    /// Makes this journal equal to `other` up to `other.end()`: keeps the common prefix,
    /// then copies the rest. Returns the common prefix.
    pub fn adopt(&mut self, other: &JournalSummary) -> Position {
        let common = common_prefix(self, other);
        self.truncate(common);
        self.extend_from(other);
        common
    }

    /// Appends `other`'s records after `self.end()` (the prefix must already match).
    pub fn extend_from(&mut self, other: &JournalSummary) {
        for &(epoch, last) in &other.segments {
            if last > self.end() {
                assert!(epoch >= self.last_epoch(), "journal epochs never go back");
                match self.segments.last_mut() {
                    Some(l) if l.0 == epoch => l.1 = last,
                    _ => self.segments.push((epoch, last)),
                }
            }
        }
    }

    /// Which of two journals is more complete: higher last epoch, then longer.
    pub fn rank(&self) -> (Epoch, Position) {
        (self.last_epoch(), self.end())
    }
}

/// The last position up to which `a` and `b` hold the same records.
pub fn common_prefix(a: &JournalSummary, b: &JournalSummary) -> Position {
    let limit = a.end().min(b.end());
    let mut agreed = 0;
    // Walk segment boundaries of both; within a stretch where both epochs are constant,
    // either all positions agree or none do.
    let mut pos = 0;
    while pos < limit {
        let p = pos + 1;
        let (ea, enda) = seg_at(a, p);
        let (eb, endb) = seg_at(b, p);
        if ea != eb {
            break;
        }
        let stretch_end = enda.min(endb).min(limit);
        agreed = stretch_end;
        pos = stretch_end;
    }
    agreed
}

fn seg_at(s: &JournalSummary, pos: Position) -> (Epoch, Position) {
    *s.segments.iter().find(|seg| seg.1 >= pos).expect("position inside the journal")
}

/// A mirrored database's status on this member, as the Mirror Monitor prints it (the
/// serde names are the words, so the status travels as it always did). The failover core
/// decides from these whether the member may be promoted ([`DatabaseStatus::ready`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatabaseStatus {
    /// On the primary: mirrored and written here.
    Normal,
    /// Following the primary: every received record is applied as it is journaled.
    Dejournaling,
    #[serde(rename = "Needs Activation")]
    NeedsActivation,
    #[serde(rename = "Needs Catchup")]
    NeedsCatchup,
    #[serde(rename = "Catchup Running")]
    CatchupRunning,
    Dismounted,
    /// Mirrored in another mirror.
    Obsolete,
}

impl DatabaseStatus {
    pub const ALL: [DatabaseStatus; 7] = [
        DatabaseStatus::Normal,
        DatabaseStatus::Dejournaling,
        DatabaseStatus::NeedsActivation,
        DatabaseStatus::NeedsCatchup,
        DatabaseStatus::CatchupRunning,
        DatabaseStatus::Dismounted,
        DatabaseStatus::Obsolete,
    ];

    pub fn word(self) -> &'static str {
        match self {
            DatabaseStatus::Normal => "Normal",
            DatabaseStatus::Dejournaling => "Dejournaling",
            DatabaseStatus::NeedsActivation => "Needs Activation",
            DatabaseStatus::NeedsCatchup => "Needs Catchup",
            DatabaseStatus::CatchupRunning => "Catchup Running",
            DatabaseStatus::Dismounted => "Dismounted",
            DatabaseStatus::Obsolete => "Obsolete",
        }
    }

    pub fn from_word(word: &str) -> Option<DatabaseStatus> {
        DatabaseStatus::ALL.into_iter().find(|s| s.word() == word)
    }

    /// Mounted, activated and caught up with this member's journal (dejournaling is
    /// inline, so a database that is dejournaling is caught up): a member is promotable
    /// only while every mirrored database is.
    pub fn ready(self) -> bool {
        matches!(self, DatabaseStatus::Normal | DatabaseStatus::Dejournaling)
    }
}

/// Member status, as the Mirror Monitor prints it (the serde names are the words).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberStatus {
    Primary,
    Backup,
    Connected,
    #[serde(rename = "In Trouble")]
    InTrouble,
    Transition,
    Synchronizing,
    Waiting,
    Stopped,
    Crashed,
    Down,
    #[serde(rename = "Not Initialized")]
    #[default]
    NotInitialized,
}

impl MemberStatus {
    pub const ALL: [MemberStatus; 11] = [
        MemberStatus::Primary,
        MemberStatus::Backup,
        MemberStatus::Connected,
        MemberStatus::InTrouble,
        MemberStatus::Transition,
        MemberStatus::Synchronizing,
        MemberStatus::Waiting,
        MemberStatus::Stopped,
        MemberStatus::Crashed,
        MemberStatus::Down,
        MemberStatus::NotInitialized,
    ];

    /// The status a word of the Mirror Monitor names (`"In Trouble"`), if any.
    pub fn from_word(word: &str) -> Option<MemberStatus> {
        MemberStatus::ALL.into_iter().find(|s| s.to_string() == word)
    }

    /// The mirror status number exported for Prometheus (1 not initialized ... 9 crashed).
    /// In Trouble is reported as primary (2) and Down, which only other members see, as
    /// crashed (9).
    pub fn prometheus(self) -> u8 {
        match self {
            MemberStatus::NotInitialized => 1,
            MemberStatus::Primary | MemberStatus::InTrouble => 2,
            MemberStatus::Backup => 3,
            MemberStatus::Connected => 4,
            MemberStatus::Transition => 5,
            MemberStatus::Synchronizing => 6,
            MemberStatus::Waiting => 7,
            MemberStatus::Stopped => 8,
            MemberStatus::Crashed | MemberStatus::Down => 9,
        }
    }
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemberStatus::Primary => "Primary",
            MemberStatus::Backup => "Backup",
            MemberStatus::Connected => "Connected",
            MemberStatus::InTrouble => "In Trouble",
            MemberStatus::Transition => "Transition",
            MemberStatus::Synchronizing => "Synchronizing",
            MemberStatus::Waiting => "Waiting",
            MemberStatus::Stopped => "Stopped",
            MemberStatus::Crashed => "Crashed",
            MemberStatus::Down => "Down",
            MemberStatus::NotInitialized => "Not Initialized",
        })
    }
}

/// The arbiter line of the Mirror Monitor, from this member's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArbiterLine {
    BothConnected,
    OnlyThisMember,
    NotConnected,
}

impl fmt::Display for ArbiterLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArbiterLine::BothConnected => "Both failover members are connected to the arbiter",
            ArbiterLine::OnlyThisMember => "Only this member is connected to the arbiter",
            ArbiterLine::NotConnected => "This member is not connected to the arbiter",
        })
    }
}

/// Who may decide a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverMode {
    ArbiterControlled,
    AgentControlled,
}

impl fmt::Display for FailoverMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailoverMode::ArbiterControlled => "Arbiter Controlled",
            FailoverMode::AgentControlled => "Agent Controlled",
        })
    }
}
