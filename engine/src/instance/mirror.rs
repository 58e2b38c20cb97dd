//! The instance side of mirroring: the mirror journal, this member's write mode, and the
//! commit rule on the primary (docs/design/mirroring.md).
//!
//! Invariants:
//! - A database follows exactly one journal for the mirror's writes: the mirror journal if
//!   it is mirrored, the local journal otherwise. A transaction's records all go to one
//!   journal.
//! - On the primary, every mirror journal record of a data change carries the old value,
//!   so a member that diverged can be rewound.
//! - A client waiting for a mirror journal position on the primary is answered only once
//!   the position is durable here and acknowledged by the runtime (the backup has it), and
//!   never after this member stopped being primary without that acknowledgement.

use super::session::JournalId;
use super::Instance;
use crate::error::{EngineError, Result};
use crate::journal::Journal;
use crate::mirror::config::MemberType;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How this instance writes mirrored databases; set by the mirror runtime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum MirrorMode {
    /// Not a mirror member: there is no mirror journal, mirrored databases are read-only.
    #[default]
    None,
    /// The primary: mirrored databases are written through the mirror journal once `open`
    /// (until then the member is in transition and refuses those writes).
    Primary { open: bool },
    /// Backup, DR or reporting async: mirrored databases change only by what the primary
    /// sends, except on a read-write reporting member (`writable`), whose own writes to
    /// them go through its local journal.
    Member { writable: bool },
}

/// The mirror journal and the mirror it belongs to.
pub(crate) struct MirrorJournal {
    pub(crate) name: String,
    pub(crate) journal: Arc<Journal>,
}

/// Mirror bookkeeping that is not on disk.
#[derive(Default)]
pub(crate) struct MirrorState {
    pub(crate) mode: MirrorMode,
    /// This member's role in messages ("backup", "DR async", ...).
    pub(crate) role: &'static str,
    /// The runtime's lowest position a connected member still needs.
    pub(crate) purge_floor: u64,
    /// Databases whose activation found their part of the journal purged.
    pub(crate) needs_catchup: BTreeSet<String>,
    /// Databases being caught up by an activation right now.
    pub(crate) catchup_running: BTreeSet<String>,
    /// Mirrored databases dismounted while the instance runs: their last position.
    pub(crate) dismounted: BTreeMap<String, u64>,
    /// Received records skipped because this member does not hold their database as a
    /// mirrored, activated database; per database name.
    pub(crate) skipped: BTreeMap<String, u64>,
}

/// What the durable waits of mirror journal positions need to know.
#[derive(Clone, Debug, Default)]
pub(crate) struct AckState {
    /// The runtime's acknowledged position (the backup has everything up to it).
    pub(crate) acked: u64,
    /// Set on demotion: waits for positions above `acked` that this member may have
    /// written as primary fail with this reason.
    pub(crate) failure: Option<Demoted>,
}

/// What a demotion left unknown: the outcome of every position in `(acked, fence]`.
#[derive(Clone, Debug)]
pub(crate) struct Demoted {
    pub(crate) reason: String,
    /// The mirror journal's last position when the member stopped taking writes as
    /// primary (set when its mode leaves Primary, under the write lock; `u64::MAX` until
    /// then): nothing above it was written by this member as primary, so a wait above it
    /// is for records received from the new primary.
    pub(crate) fence: u64,
}

fn role_of(t: MemberType) -> &'static str {
    match t {
        MemberType::Failover => "backup",
        MemberType::Dr => "DR async",
        MemberType::ReportingRo => "read-only reporting async",
        MemberType::ReportingRw => "read-write reporting async",
    }
}

impl Instance {
    /// The mirror journal, once this instance is configured as a mirror member.
    pub fn mirror_journal(&self) -> Option<Arc<Journal>> {
        self.mirror.get().map(|m| m.journal.clone())
    }

    pub(crate) fn mirror_name(&self) -> Option<&str> {
        self.mirror.get().map(|m| m.name.as_str())
    }

    /// Opens the mirror journal of the configured mirror (`journal/mirror-<MIRROR>/`) and
    /// starts its writer thread if the daemons run; a member starts in
    /// [`MirrorMode::Member`] until the runtime decides. Idempotent; an error if no mirror
    /// is configured.
    pub fn open_mirror_journal(&self) -> Result<Arc<Journal>> {
        let config = self.config.lock().clone();
        let Some(mirror) = config.mirror.as_ref() else {
            return Err(EngineError::Invalid("no mirror is configured on this instance".into()));
        };
        let _w = self.write_lock.lock();
        if let Some(m) = self.mirror.get() {
            return Ok(m.journal.clone());
        }
        let options = super::journal_options(self.dir.mirror_journal_dir(&mirror.name), &config);
        let journal = Arc::new(Journal::open(self.vfs.clone(), options)?);
        let _ = self.mirror.set(MirrorJournal { name: mirror.name.clone(), journal: journal.clone() });
        let member_type = mirror.this().map_or(MemberType::Failover, |m| m.member_type);
        {
            let mut state = self.mirror_state.lock();
            state.role = role_of(member_type);
            state.mode = MirrorMode::Member { writable: member_type == MemberType::ReportingRw };
        }
        self.next_txn.fetch_max(journal.last_position() + 1, std::sync::atomic::Ordering::SeqCst);
        if let Some(daemon) = self.daemon.lock().as_ref() {
            *daemon.mirror_writer.lock() = Some(journal.start_writer());
        }
        tracing::info!("mirror {}: mirror journal at position {}", mirror.name, journal.last_position());
        Ok(journal)
    }

    /// The journal behind an id (the mirror journal must exist for `Mirror`).
    pub(crate) fn journal_of(&self, id: JournalId) -> &Arc<Journal> {
        match id {
            JournalId::Local => &self.journal,
            JournalId::Mirror => {
                &self.mirror.get().expect("a mirror journal position without a mirror journal").journal
            }
        }
    }

    pub fn mirror_mode(&self) -> MirrorMode {
        self.mirror_state.lock().mode
    }

    /// Sets how this member writes mirrored databases (the runtime, on every role change).
    /// Becoming primary clears the failure set by [`Instance::mirror_fail_pending`].
    /// Any mode but `None` needs the mirror journal.
    pub fn set_mirror_mode(&self, mode: MirrorMode) -> Result<()> {
        if mode != MirrorMode::None && self.mirror.get().is_none() {
            return Err(EngineError::Invalid(format!(
                "cannot become a mirror {}: no mirror journal is open (configure the mirror first)",
                match mode {
                    MirrorMode::Primary { .. } => "primary",
                    _ => "member",
                }
            )));
        }
        // Under the write lock: a write checks the mode and appends in one step.
        let _w = self.write_lock.lock();
        let before = std::mem::replace(&mut self.mirror_state.lock().mode, mode);
        if matches!(mode, MirrorMode::Primary { .. }) {
            self.acks.send_modify(|a| a.failure = None);
        } else if matches!(before, MirrorMode::Primary { .. }) {
            // The last position this member wrote as primary: no write is in flight (the
            // write lock) and none is taken as primary from here on. The unknown outcomes
            // of a demotion end there (see `Demoted`).
            let last = self.mirror_journal().map_or(0, |j| j.last_position());
            self.acks.send_if_modified(|a| match a.failure.as_mut() {
                Some(d) if d.fence > last => {
                    d.fence = last;
                    true
                }
                _ => false,
            });
        }
        if before != mode {
            tracing::info!("mirror mode: {before:?} -> {mode:?}");
        }
        Ok(())
    }

    /// The runtime's acknowledgement: every mirror journal position up to `upto` is on the
    /// active backup (or the primary runs alone). Releases the commits waiting for it.
    pub fn mirror_ack(&self, upto: u64) {
        self.acks.send_if_modified(|a| {
            let moved = upto > a.acked;
            a.acked = a.acked.max(upto);
            moved
        });
    }

    /// The highest acknowledged mirror journal position.
    pub fn mirror_acked(&self) -> u64 {
        self.acks.borrow().acked
    }

    /// On demotion: every wait, current or future, for a mirror journal position above the
    /// acknowledged one, up to the journal's end when the mode leaves Primary, fails with
    /// `reason` (its commit's outcome is unknown: the new primary may or may not have it),
    /// until this member becomes primary again. Positions past that end are records
    /// received as a follower: a read that saw them waits only until they are durable here.
    pub fn mirror_fail_pending(&self, reason: &str) {
        // Every position fails until the mode leaves Primary, which sets the real fence: a
        // write may still be appended as primary until then.
        self.acks.send_modify(|a| a.failure = Some(Demoted { reason: reason.to_string(), fence: u64::MAX }));
    }

    /// The lowest mirror journal position a connected member still needs: purge keeps it.
    pub fn set_mirror_purge_floor(&self, position: u64) {
        self.mirror_state.lock().purge_floor = position;
    }

    /// Received records skipped so far, per database this member does not hold as a
    /// mirrored, activated database.
    pub fn mirror_skipped_records(&self) -> BTreeMap<String, u64> {
        self.mirror_state.lock().skipped.clone()
    }

    /// Waits until a mirror journal position may be acknowledged to a client: durable here
    /// and, when this member is primary, acknowledged by the runtime. Fails once
    /// [`Instance::mirror_fail_pending`] was called, unless the position was acknowledged.
    pub(crate) async fn wait_mirror(&self, position: u64) -> Result<()> {
        let journal = self.mirror_journal().ok_or_else(|| {
            EngineError::Invalid("a mirror journal position was awaited, but there is no mirror journal".into())
        })?;
        // Decided at the start: a commit made as primary is never answered without the
        // acknowledgement, whatever the mode becomes while it waits.
        let needs_ack = matches!(self.mirror_mode(), MirrorMode::Primary { .. });
        let mut acks = self.acks.subscribe();
        journal.wait_durable(position).await?;
        loop {
            {
                let a = acks.borrow_and_update();
                if a.acked >= position {
                    return Ok(());
                }
                // A commit made as primary, or a position it may have written as primary:
                // its outcome is unknown. Above the fence it is a record received since
                // (a read on the follower), durable here, which is all a follower promises.
                if let Some(d) = a.failure.as_ref().filter(|d| needs_ack || position <= d.fence) {
                    return Err(EngineError::Mirror(format!(
                        "mirror journal position {position} was not confirmed (confirmed up to {}): {}",
                        a.acked, d.reason
                    )));
                }
                if !needs_ack {
                    return Ok(());
                }
            }
            // The sender lives in `self`, so it cannot be dropped while we wait.
            let _ = acks.changed().await;
        }
    }

    /// The journal a write to `db` goes to in the current mode, or why it is refused.
    /// Called with the write lock held.
    pub(crate) fn journal_for_write(&self, db: &crate::storage::Database) -> Result<JournalId> {
        let (mirrored, ours, activated) =
            db.with_meta(|m| (m.is_mirrored(), Some(m.mirror_name.as_str()) == self.mirror_name(), m.activated));
        if !mirrored {
            return Ok(JournalId::Local);
        }
        let state = self.mirror_state.lock();
        let refuse = |reason: String| Err(EngineError::Protect { database: db.name().to_string(), reason });
        match state.mode {
            MirrorMode::Member { writable: true } => Ok(JournalId::Local),
            MirrorMode::Primary { open: true } if ours && activated => Ok(JournalId::Mirror),
            MirrorMode::Primary { open: true } => refuse(format!(
                " on this member: it is a mirrored database that {}",
                if ours { "needs activation here" } else { "belongs to another mirror" }
            )),
            MirrorMode::Primary { open: false } => refuse(
                " for now: this member is in transition to primary; mirrored databases become writable once it opens"
                    .into(),
            ),
            MirrorMode::Member { writable: false } => {
                refuse(format!(" on this member ({}): it is mirrored, and only the primary writes it", state.role))
            }
            MirrorMode::None => {
                refuse(" on this instance: it is mirrored, and this instance is not a mirror member".into())
            }
        }
    }
}

impl Instance {
    /// Makes this member the primary at `epoch`: the mirror journal continues at that
    /// epoch, and every transaction left open in it (the former primary's) is rolled back
    /// through it, compensations and TROLLBACK, before anything else is written. The member
    /// is then primary but not open for writes ([`MirrorMode::Primary`] `{ open: false }`);
    /// the runtime opens it.
    pub fn promote(&self, epoch: u64) -> Result<()> {
        let mirror = self.mirror.get().ok_or(EngineError::NotMirrored)?;
        let _w = self.write_lock.lock();
        let journal = &mirror.journal;
        if epoch < journal.epoch() {
            return Err(EngineError::Invalid(format!(
                "cannot become primary at epoch {epoch}: the mirror journal is already at epoch {}",
                journal.epoch()
            )));
        }
        journal.set_epoch(epoch);
        let last = journal.last_position();
        // What this member holds up to here came from the former primary and is durable
        // here: nothing waits for a confirmation of it any more.
        self.acks.send_modify(|a| {
            a.acked = a.acked.max(last);
            a.failure = None;
        });
        let past = journal.last_position().max(self.journal.last_position()) + 1;
        self.next_txn.fetch_max(past, std::sync::atomic::Ordering::SeqCst);
        let ids: Vec<u64> = self.mirror_txns.lock().keys().copied().collect();
        for id in &ids {
            let Some(t) = self.mirror_txns.lock().remove(id) else { continue };
            tracing::warn!(
                "mirror {}: rolling back transaction {id} left open by the former primary ({} writes)",
                mirror.name,
                t.undo.len()
            );
            self.rollback_in(JournalId::Mirror, *id, t.undo)?;
        }
        self.mirror_state.lock().mode = MirrorMode::Primary { open: false };
        tracing::info!(
            "mirror {}: this member is primary at epoch {epoch} ({} open transactions rolled back)",
            mirror.name,
            ids.len()
        );
        Ok(())
    }
}
