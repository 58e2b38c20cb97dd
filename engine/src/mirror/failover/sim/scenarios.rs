//! Named scenarios from the acceptance list, each a scripted run of the simulator.

use super::invariants::members_converge;
use super::world::{Options, Sim, A, B, D};
use crate::mirror::failover::{Event, MemberId, MemberStatus, OperatorCommand};

const COMMIT_EVERY: u64 = 50;

/// A healthy mirror after 4 s of writes: A primary, B active backup, D connected.
fn healthy(arbiter: bool) -> Sim {
    let trace = std::env::var("SIM_TRACE").is_ok();
    let mut sim = Sim::new(1, Options { arbiter, trace, ..Options::default() });
    sim.run_until(4_000, COMMIT_EVERY);
    assert!(sim.is_open_primary(A));
    assert_eq!(sim.status(B), Some(MemberStatus::Backup));
    assert_eq!(sim.status(D), Some(MemberStatus::Connected));
    sim
}

fn no_violation(sim: &Sim) {
    assert_eq!(sim.failure, None);
}

fn heal_and_converge(sim: &mut Sim) {
    sim.heal_everything();
    sim.run_for(15_000, COMMIT_EVERY);
    sim.run_for(4_000, 0);
    no_violation(sim);
    members_converge::check(&sim.nodes, &sim.acked).unwrap();
}

fn first_ack_in_epoch_after(sim: &Sim, who: MemberId, after_epoch: u64) -> Option<u64> {
    sim.acks.iter().find(|&&(_, m, e)| m == who && e > after_epoch).map(|a| a.0)
}

fn last_ack_by(sim: &Sim, who: MemberId, epoch: u64) -> Option<u64> {
    sim.acks.iter().rev().find(|&&(_, m, e)| m == who && e == epoch).map(|a| a.0)
}

fn epoch_of(sim: &Sim, id: MemberId) -> u64 {
    sim.nodes[id.0 as usize].durable_epoch
}

#[test]
fn kill_primary_under_writes() {
    let mut sim = healthy(true);
    let old = epoch_of(&sim, A);
    sim.crash(0);
    sim.run_for(5_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.is_open_primary(B));
    let last_old = last_ack_by(&sim, A, old).unwrap();
    let first_new = first_ack_in_epoch_after(&sim, B, old).unwrap();
    assert!(first_new - last_old < 4_000, "failover took {} ms", first_new - last_old);
    heal_and_converge(&mut sim);
    assert_eq!(sim.status(A), Some(MemberStatus::Backup), "the old primary rejoins as backup");
}

#[test]
fn hung_primary_resumed_does_not_acknowledge() {
    let mut sim = healthy(true);
    let old = epoch_of(&sim, A);
    // Hung, and its host unreachable from B so its agent cannot force it down: the arbiter
    // decides. Then the host comes back and the process resumes with its stale state.
    sim.hang(0, sim.now + 12_000);
    sim.cut(0, 1);
    sim.run_for(8_000, COMMIT_EVERY);
    assert!(sim.is_open_primary(B));
    sim.net.heal(0, 1);
    sim.run_for(6_000, COMMIT_EVERY);
    no_violation(&sim);
    let first_new = first_ack_in_epoch_after(&sim, B, old).unwrap();
    assert!(last_ack_by(&sim, A, old).unwrap() < first_new);
    assert!(!sim.is_open_primary(A), "the resumed old primary stepped down");
    heal_and_converge(&mut sim);
}

#[test]
fn arbiter_down_changes_nothing() {
    let mut sim = healthy(true);
    let before = sim.acked.len();
    sim.arbiter_down();
    sim.run_for(20_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.is_open_primary(A));
    assert_eq!(sim.status(B), Some(MemberStatus::Backup));
    assert!(sim.acked.len() > before + 300, "the primary kept serving");
    heal_and_converge(&mut sim);
}

#[test]
fn arbiter_replaced_live_then_failover_works() {
    let mut sim = healthy(true);
    sim.arbiter_replaced();
    sim.run_for(3_000, COMMIT_EVERY);
    sim.isolate(0);
    sim.run_for(8_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.is_open_primary(B));
    heal_and_converge(&mut sim);
}

#[test]
fn primary_backup_link_cut_no_failover() {
    let mut sim = healthy(true);
    let epoch = epoch_of(&sim, A);
    sim.cut(0, 1);
    sim.run_for(5_000, COMMIT_EVERY);
    let mid = sim.acked.len();
    sim.run_for(10_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.is_open_primary(A));
    assert!(!sim.is_open_primary(B));
    assert_eq!(epoch_of(&sim, A), epoch, "no failover");
    assert!(sim.acked.len() > mid + 100, "the primary goes on after its trouble window");
    sim.net.heal(0, 1);
    sim.run_for(5_000, COMMIT_EVERY);
    assert_eq!(sim.status(B), Some(MemberStatus::Backup), "the backup resynchronised");
    heal_and_converge(&mut sim);
}

#[test]
fn isolated_primary_stops_acking_before_takeover() {
    let mut sim = healthy(true);
    let old = epoch_of(&sim, A);
    let isolated_at = sim.now;
    sim.isolate(0);
    sim.run_for(10_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.is_open_primary(B));
    let last_old = last_ack_by(&sim, A, old).unwrap();
    let first_new = first_ack_in_epoch_after(&sim, B, old).unwrap();
    assert!(last_old < first_new, "old primary acked at {last_old}, new epoch started at {first_new}");
    assert!(first_new - isolated_at <= 4_000, "takeover took {} ms", first_new - isolated_at);
    heal_and_converge(&mut sim);
    assert_eq!(sim.status(A), Some(MemberStatus::Backup));
}

#[test]
fn planned_failover_and_back() {
    let mut sim = healthy(true);
    sim.deliver(0, Event::Operator(OperatorCommand::PlannedFailover));
    sim.run_for(3_000, COMMIT_EVERY);
    assert!(sim.is_open_primary(B));
    assert_eq!(sim.status(A), Some(MemberStatus::Backup));
    sim.deliver(1, Event::Operator(OperatorCommand::PlannedFailover));
    sim.run_for(3_000, COMMIT_EVERY);
    assert!(sim.is_open_primary(A));
    assert_eq!(sim.status(B), Some(MemberStatus::Backup));
    no_violation(&sim);
    heal_and_converge(&mut sim);
}

#[test]
fn both_failover_members_lost_dr_promoted_only_by_operator() {
    let mut sim = healthy(true);
    sim.crash(0);
    sim.crash(1);
    sim.run_for(20_000, COMMIT_EVERY);
    assert!(!sim.is_open_primary(D), "a DR async is never promoted automatically");
    sim.deliver(2, Event::Operator(OperatorCommand::PromoteDr));
    sim.run_for(3_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.is_open_primary(D));
    sim.acked.check_primary(&sim.nodes[2], "after promotion").unwrap();
}

#[test]
fn lagging_backup_never_promoted() {
    let mut sim = healthy(true);
    // B falls behind: A goes on alone after losing it.
    sim.cut(0, 1);
    sim.run_for(8_000, COMMIT_EVERY);
    assert!(sim.is_open_primary(A));
    // Then A's host vanishes entirely (no agent either): B lacks acknowledged commits.
    sim.isolate(0);
    sim.run_for(20_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(!sim.is_open_primary(B), "a lagging backup is never promoted");
    heal_and_converge(&mut sim);
}

#[test]
fn no_failover_backup_never_promoted() {
    let mut sim = healthy(true);
    sim.deliver(1, Event::Operator(OperatorCommand::SetNoFailover));
    sim.crash(0);
    sim.nodes[0].restart_at = None;
    sim.run_for(15_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(!sim.is_open_primary(B));
    assert!(!sim.is_open_primary(D));
    sim.deliver(1, Event::Operator(OperatorCommand::ClearNoFailover));
    sim.run_for(5_000, COMMIT_EVERY);
    assert!(sim.is_open_primary(B), "promotable again once the flag is cleared");
}

#[test]
fn old_primary_with_unacknowledged_tail_rejoins_as_backup() {
    let mut sim = healthy(true);
    sim.isolate(0);
    // Commits keep arriving at the isolated primary: written to its journal, never acked.
    for _ in 0..20 {
        sim.commit(0);
    }
    sim.run_for(8_000, COMMIT_EVERY);
    assert!(sim.is_open_primary(B));
    assert!(sim.nodes[0].journal.len() > sim.nodes[1].journal.len() || sim.nodes[0].journal != sim.nodes[1].journal);
    heal_and_converge(&mut sim);
    assert_eq!(sim.status(A), Some(MemberStatus::Backup));
}

#[test]
fn agent_controlled_mode_without_arbiter() {
    let mut sim = healthy(false);
    sim.crash(0);
    sim.run_for(5_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.is_open_primary(B), "the agent confirmed the primary down");
    heal_and_converge(&mut sim);
}

#[test]
fn backup_demoted_to_dr_is_never_promoted_until_the_operator_says() {
    let mut sim = healthy(true);
    sim.deliver(1, Event::Operator(OperatorCommand::DemoteToDr));
    sim.run_for(8_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.is_open_primary(A), "the primary goes on without a backup");
    let status = sim.nodes[1].member.as_ref().map(|m| m.status());
    assert_eq!(status, Some(MemberStatus::Connected), "the demoted member follows as an async");
    sim.crash(0);
    sim.run_for(20_000, COMMIT_EVERY);
    assert!(!sim.is_open_primary(B), "a DR member is never promoted automatically");
    sim.deliver(1, Event::Operator(OperatorCommand::PromoteDr));
    sim.run_for(5_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.is_open_primary(B), "promoted by the operator with no primary left, it takes over");
}

/// Regression: a former primary whose diverged tail was rewound at its rejoin must stay
/// promotable. It once followed as Backup but never took over again (planned failover to
/// it left every member Waiting; a lost primary got no failover).
#[test]
fn old_primary_rewound_at_rejoin_can_take_over_again() {
    let mut sim = healthy(true);
    sim.isolate(0);
    for _ in 0..20 {
        sim.commit(0);
    }
    sim.run_for(8_000, COMMIT_EVERY);
    assert!(sim.is_open_primary(B));
    // Only the arbiter link heals first: A learns the newer epoch and steps down, then its
    // connector joins B, which answers REWIND (A holds records B never had).
    sim.net.heal(0, super::world::ARBITER_HOST);
    sim.run_for(2_000, COMMIT_EVERY);
    assert!(!sim.is_open_primary(A), "A stepped down");
    let rewound = sim.rejoin(0);
    assert!(rewound.is_some(), "A's diverged tail is rewound at its join");
    heal_and_converge(&mut sim);
    assert_eq!(sim.status(A), Some(MemberStatus::Backup));
    sim.deliver(1, Event::Operator(OperatorCommand::PlannedFailover));
    sim.run_for(3_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.is_open_primary(A), "the rewound member takes over at a planned failover");
    assert_eq!(sim.status(B), Some(MemberStatus::Backup));
    // And a lost primary fails over to it again... and back.
    sim.crash(0);
    sim.run_for(5_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.is_open_primary(B), "B takes over from the crashed A");
    heal_and_converge(&mut sim);
}

/// Regression (found by the random operator actions): a planned failover to a backup
/// marked no-failover left both failover members Waiting for ever: the old primary waited
/// for the hand-over, the backup would not take it. The hand-over is now given up after
/// the trouble timeout and the mirror finds a primary again.
#[test]
fn planned_failover_to_a_no_failover_backup_does_not_leave_the_mirror_without_primary() {
    // Without an arbiter (with one, the backup is granted the takeover once cleared).
    let mut sim = healthy(false);
    sim.deliver(1, Event::Operator(OperatorCommand::SetNoFailover));
    sim.deliver(0, Event::Operator(OperatorCommand::PlannedFailover));
    // Past QoS: the backup no longer counts the old primary as its primary.
    sim.run_for(5_000, COMMIT_EVERY);
    assert!(!sim.is_open_primary(B), "a no-failover backup never takes over");
    sim.deliver(1, Event::Operator(OperatorCommand::ClearNoFailover));
    sim.run_for(15_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.primary_index().is_some(), "a primary again");
    heal_and_converge(&mut sim);
}

/// Regression (issue 14): a primary measures its trouble timeout only over time it ran.
/// Without an arbiter it goes on alone a trouble timeout after losing its backup (it used
/// to stay In Trouble for good), but one stopped with its agent (SIGSTOP) for longer than
/// that must not go on alone the moment it resumes, on a timer that ran while it saw
/// nothing: it waits a whole trouble timeout of its own steps.
#[test]
fn a_primary_paused_in_trouble_goes_on_alone_only_after_a_trouble_timeout_of_its_own() {
    let mut sim = healthy(false);
    let timeout = sim.cfg.timing.trouble_timeout();
    sim.cut(0, 1);
    sim.run_for(1_000, COMMIT_EVERY);
    assert_eq!(sim.status(A), Some(MemberStatus::InTrouble), "A lost its backup");
    let acked = sim.acked.len();
    let pause = timeout + 2_000;
    sim.pause(0, sim.now + pause, true);
    sim.run_for(pause, COMMIT_EVERY);
    sim.run_for(timeout - 200, COMMIT_EVERY);
    no_violation(&sim);
    assert_eq!(
        sim.status(A),
        Some(MemberStatus::InTrouble),
        "A went on alone on a timer that ran while it was stopped"
    );
    assert_eq!(sim.acked.len(), acked, "nothing acknowledged within a trouble timeout of resuming");
    sim.run_for(1_000, COMMIT_EVERY);
    no_violation(&sim);
    assert_eq!(sim.status(A), Some(MemberStatus::Primary), "A goes on alone a trouble timeout after resuming");
    assert!(sim.acked.len() > acked, "and acknowledges again");
    assert!(!sim.is_open_primary(B), "the backup never took over: it could not reach A's agent");
    heal_and_converge(&mut sim);
}

/// Regression (issue 14): the only failover member left (its partner was demoted to DR)
/// takes over again after a restart, once the agents of every other member say none of
/// them is primary. It used to wait for ever for a failover partner it no longer had.
#[test]
fn a_lone_failover_member_takes_over_after_its_restart() {
    let mut sim = healthy(true);
    sim.deliver(1, Event::Operator(OperatorCommand::DemoteToDr));
    sim.run_for(4_000, COMMIT_EVERY);
    assert!(sim.is_open_primary(A));
    let old = epoch_of(&sim, A);
    sim.crash(0);
    sim.nodes[0].restart_at = Some(sim.now + 1_000);
    sim.run_for(8_000, COMMIT_EVERY);
    no_violation(&sim);
    assert!(sim.is_open_primary(A), "the lone failover member is primary again");
    assert!(epoch_of(&sim, A) > old, "in a new epoch");
    assert!(!sim.is_open_primary(B) && !sim.is_open_primary(D), "no async took over");
    assert!(first_ack_in_epoch_after(&sim, A, old).is_some(), "and acknowledges commits");
    heal_and_converge(&mut sim);
    assert_eq!(sim.status(B), Some(MemberStatus::Connected), "the DR member follows it");
}
