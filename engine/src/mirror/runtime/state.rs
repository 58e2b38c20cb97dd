//! The member's durable mirror state: `<data-dir>/mirror.state.json` (format in
//! docs/agent.md). The agent reads it to tell other members this member's role, epoch and
//! journal summary while the engine is down; the runtime reads it at start.
//!
//! Invariant: an epoch is in this file (written and synced) before any record of it is
//! written or acknowledged, and before any message carries it.

use crate::agent::status::{read_mirror_state, MirrorRole, MirrorState, MIRROR_STATE_FILE};
use crate::error::EngineError;
use crate::instance::datadir::{write_atomically, DataDir};
use crate::mirror::failover::JournalSummary;

pub fn load(dir: &DataDir) -> Result<Option<MirrorState>, EngineError> {
    let state = read_mirror_state(dir).map_err(EngineError::Invalid)?;
    if let Some(s) = &state {
        // A state saved before epochs were checked may hold one nobody can follow.
        let highest = s.epochs.iter().map(|e| e.0).chain([s.epoch]).max().unwrap_or(0);
        if highest > crate::mirror::failover::MAX_EPOCH {
            return Err(EngineError::Invalid(format!(
                "{MIRROR_STATE_FILE} holds epoch {highest}, above the largest valid epoch {}: it was \
                 poisoned by an unchecked peer or arbiter; rebuild this member from the primary \
                 (remove it from the mirror, delete its mirror state and journal, join again)",
                crate::mirror::failover::MAX_EPOCH
            )));
        }
    }
    Ok(state)
}

pub fn save(dir: &DataDir, state: &MirrorState) -> Result<(), EngineError> {
    let text = serde_json::to_vec_pretty(state).expect("the mirror state serialises");
    write_atomically(&dir.root().join(MIRROR_STATE_FILE), &text)
}

/// The summary of a journal ending at `last` whose epochs start as `state.epochs` says.
pub fn summary(state: &MirrorState, last: u64) -> JournalSummary {
    JournalSummary::from_segments(&state.summary(last))
}

/// Records that `epoch` starts at `first` (a no-op when it is already the newest epoch).
/// Epoch starts after `first` are dropped: the journal was cut back before them.
pub fn note_epoch_start(state: &mut MirrorState, epoch: u64, first: u64) {
    state.epochs.retain(|&(_, f)| f < first);
    if state.epochs.last().is_none_or(|&(e, _)| e != epoch) {
        state.epochs.push((epoch, first));
    }
}

/// Drops epoch starts past `to` (after a rewind).
pub fn cut_epochs(state: &mut MirrorState, to: u64) {
    state.epochs.retain(|&(_, f)| f <= to);
}

pub fn role_word(primary: bool, failover: bool) -> MirrorRole {
    match (primary, failover) {
        (true, _) => MirrorRole::Primary,
        (false, true) => MirrorRole::Backup,
        (false, false) => MirrorRole::Async,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_starts_follow_the_journal() {
        let mut s = MirrorState::default();
        note_epoch_start(&mut s, 16, 1);
        note_epoch_start(&mut s, 16, 5);
        note_epoch_start(&mut s, 33, 11);
        assert_eq!(s.epochs, vec![(16, 1), (33, 11)]);
        assert_eq!(summary(&s, 12).segments(), &[(16, 10), (33, 12)]);
        cut_epochs(&mut s, 10);
        assert_eq!(s.epochs, vec![(16, 1)]);
        // A newer epoch starting earlier than a recorded one replaces it.
        note_epoch_start(&mut s, 33, 11);
        note_epoch_start(&mut s, 49, 8);
        assert_eq!(s.epochs, vec![(16, 1), (49, 8)]);
    }

    #[test]
    fn the_file_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        assert_eq!(load(&dir).unwrap(), None);
        let s = MirrorState {
            mirror: "M".into(),
            member: "A".into(),
            epoch: 16,
            epochs: vec![(16, 1)],
            joined: true,
            ..MirrorState::default()
        };
        save(&dir, &s).unwrap();
        assert_eq!(load(&dir).unwrap(), Some(s));
    }
}
