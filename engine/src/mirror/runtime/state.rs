//! The member's durable mirror state: `<data-dir>/mirror.state.json` (format in
//! docs/agent.md). The agent reads it to tell other members this member's role, epoch and
//! journal summary while the engine is down; the runtime reads it at start.
//!
//! Invariant: an epoch is in this file (written and synced) before any record of it is
//! written or acknowledged, and before any message carries it.

use crate::agent::status::{read_mirror_state, MirrorRole, MirrorState, MIRROR_STATE_FILE};
use crate::error::EngineError;
use crate::instance::datadir::DataDir;
use crate::mirror::failover::JournalSummary;
use crate::vfs::{OpenMode, Vfs};

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

/// Writes the state file atomically through `vfs` (the instance's file system, so crash
/// tests on a simulated disk reach it): a temporary file written and synced, renamed into
/// place, the directory synced. A crash leaves the old file or the new one, never half.
pub fn save(vfs: &dyn Vfs, dir: &DataDir, state: &MirrorState) -> Result<(), EngineError> {
    let text = serde_json::to_vec_pretty(state).expect("the mirror state serialises");
    let path = dir.root().join(MIRROR_STATE_FILE);
    let tmp = path.with_extension("tmp");
    let io = |what: &str, e| EngineError::io(format!("{what} {}", path.display()), e);
    if vfs.exists(&tmp) {
        vfs.remove_file(&tmp).map_err(|e| io("removing a leftover temporary file of", e))?;
    }
    let file = vfs.open(&tmp, OpenMode::CreateNew).map_err(|e| io("writing", e))?;
    file.write_all_at(0, &text).and_then(|()| file.sync_data()).map_err(|e| io("writing", e))?;
    drop(file);
    vfs.rename(&tmp, &path).map_err(|e| io("renaming into", e))?;
    vfs.sync_dir(dir.root()).map_err(|e| io("syncing the directory of", e))
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
        save(&crate::vfs::real::RealVfs::new(), &dir, &s).unwrap();
        assert_eq!(load(&dir).unwrap(), Some(s));
    }

    /// The epoch is only as safe as the file that carries it: a power cut at any point of
    /// a save leaves the old state or the new one, whole.
    #[test]
    fn a_power_cut_anywhere_in_a_save_leaves_the_old_state_or_the_new_one() {
        use crate::vfs::sim::SimVfs;
        let dir = DataDir::new("/sim/member");
        let path = dir.root().join(MIRROR_STATE_FILE);
        let old = MirrorState { mirror: "M".into(), epoch: 16, epochs: vec![(16, 1)], ..MirrorState::default() };
        let new = MirrorState { epoch: 33, epochs: vec![(16, 1), (33, 9)], ..old.clone() };
        let fresh = |seed| {
            let vfs = SimVfs::new(seed);
            vfs.create_dir_all(dir.root()).unwrap();
            save(&vfs, &dir, &old).unwrap();
            vfs
        };
        let probe = fresh(0);
        let before = probe.operations();
        save(&probe, &dir, &new).unwrap();
        let steps = probe.operations() - before;
        assert!(steps >= 4, "write, sync, rename, sync the directory: {steps}");
        for cut in 0..=steps {
            for seed in 0..8 {
                let vfs = fresh(seed);
                vfs.fail_after(cut);
                let saved = save(&vfs, &dir, &new).is_ok();
                let after = vfs.crash();
                let bytes = after.read_all(&path).expect("the state file survives a power cut");
                let got: MirrorState = serde_json::from_slice(&bytes).expect("never half a file");
                assert!(got == old || got == new, "cut after {cut} operations, seed {seed}: {got:?}");
                if saved {
                    assert_eq!(got, new, "a save that returned is durable");
                }
            }
        }
    }
}
