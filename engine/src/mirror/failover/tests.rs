//! Unit tests: vocabulary, journal summaries, the timing contract, the arbiter's answers,
//! and golden decision tables (events in, separator, commands out).

use super::*;

#[test]
fn statuses_read_as_users_know_them() {
    let all = [
        (MemberStatus::Primary, "Primary", 2),
        (MemberStatus::Backup, "Backup", 3),
        (MemberStatus::Connected, "Connected", 4),
        (MemberStatus::InTrouble, "In Trouble", 2),
        (MemberStatus::Transition, "Transition", 5),
        (MemberStatus::Synchronizing, "Synchronizing", 6),
        (MemberStatus::Waiting, "Waiting", 7),
        (MemberStatus::Stopped, "Stopped", 8),
        (MemberStatus::Crashed, "Crashed", 9),
        (MemberStatus::Down, "Down", 9),
        (MemberStatus::NotInitialized, "Not Initialized", 1),
    ];
    for (status, text, number) in all {
        assert_eq!(status.to_string(), text);
        assert_eq!(status.prometheus(), number);
    }
    assert_eq!(ArbiterLine::BothConnected.to_string(), "Both failover members are connected to the arbiter");
    assert_eq!(ArbiterLine::OnlyThisMember.to_string(), "Only this member is connected to the arbiter");
    assert_eq!(ArbiterLine::NotConnected.to_string(), "This member is not connected to the arbiter");
    assert_eq!(FailoverMode::ArbiterControlled.to_string(), "Arbiter Controlled");
    assert_eq!(FailoverMode::AgentControlled.to_string(), "Agent Controlled");
}

#[test]
fn epochs_are_unique_per_member_and_increase() {
    for after in [0, 1, 15, 16, 17, 33, 1000] {
        for m in 0..MAX_MEMBERS {
            let e = next_epoch(after, MemberId(m));
            assert!(e > after);
            assert_eq!(e % u64::from(MAX_MEMBERS), u64::from(m));
        }
    }
}

#[test]
fn journal_summaries_find_where_journals_part() {
    let a = JournalSummary::from_records(&[16, 16, 16, 33, 33]);
    let b = JournalSummary::from_records(&[16, 16, 16, 16, 16, 16]);
    let c = JournalSummary::from_records(&[16, 16]);
    assert_eq!(common_prefix(&a, &b), 3);
    assert_eq!(common_prefix(&a, &c), 2);
    assert_eq!(common_prefix(&a, &a), 5);
    let mut d = b.clone();
    assert_eq!(d.adopt(&a), 3);
    assert_eq!(d, a);
    d.truncate(4);
    assert_eq!(d.segments(), &[(16, 3), (33, 4)]);
    d.truncate(3);
    assert_eq!(d.segments(), &[(16, 3)]);
    assert_eq!(a.epoch_at(4), Some(33));
    assert_eq!(a.epoch_at(6), None);
    assert!(a.rank() > b.rank(), "a newer epoch beats a longer journal");
}

/// The timing contract, computed from the configuration for a range of QoS values:
/// heartbeat + max_rtt <= ack_lease, and the isolated primary stops acknowledging
/// (ack_lease · (1 + ρ)) before the backup may take over (QoS · (1 − ρ)).
#[test]
fn timing_contract_holds_for_every_qos() {
    for qos in (300..=20_000).step_by(100) {
        let t = Timing::with_qos(qos);
        let stops = t.primary_stops_acking_after();
        let takes_over = t.backup_may_take_over_after();
        assert!(
            stops < takes_over,
            "QoS {qos}: primary stops after {stops} ms, backup may take over after {takes_over} ms"
        );
        assert!(t.heartbeat() + t.max_rtt() <= t.ack_lease(), "QoS {qos}");
        assert!(t.max_rtt() > 0, "QoS {qos}");
        assert!(t.lease_guard() < t.qos(), "QoS {qos}");
        assert!(t.contract_holds(), "QoS {qos}");
        assert_eq!(t.trouble_timeout(), 2 * u64::from(qos));
        // Ordinary stepping (the driver's 20 ms tick, the simulator's 50 ms) is never a pause.
        assert!(t.pause_bound() >= 3 * 50 && t.pause_bound() < t.trouble_timeout(), "QoS {qos}");
    }
    let d = Timing::default();
    assert_eq!(d.qos_ms, DEFAULT_QOS_MS);
    assert_eq!(
        (d.heartbeat(), d.ack_lease(), d.primary_stops_acking_after(), d.backup_may_take_over_after()),
        (500, 1500, 1650, 2700)
    );
    // Too much drift breaks it: the contract says so rather than failing silently.
    assert!(!Timing { max_drift_ppm: 400_000, ..d }.contract_holds());
}

#[test]
fn arbiter_serialises_going_alone_and_taking_over() {
    let (a, b) = (MemberId(0), MemberId(1));
    let mut arb = Arbiter::new(1, 3000, vec![a, b]);
    let e = next_epoch(0, a);
    let ping = |eligible, mode_seq| ArbiterRequest::Ping { epoch: e, primary: true, eligible, mode_seq };
    arb.handle(0, a, &ping(Some(b), 1));
    // Primary seen recently: no takeover.
    assert_eq!(arb.handle(1000, b, &ArbiterRequest::Takeover { epoch: e }), ArbiterAnswer::Refused { epoch: e });
    // The primary goes alone: the backup is refused even once the primary is silent.
    arb.handle(1500, a, &ping(None, 2));
    assert_eq!(arb.handle(9000, b, &ArbiterRequest::Takeover { epoch: e }), ArbiterAnswer::Refused { epoch: e });
    // A stale declaration does not undo it.
    arb.handle(9001, a, &ping(Some(b), 1));
    assert_eq!(arb.handle(20_000, b, &ArbiterRequest::Takeover { epoch: e }), ArbiterAnswer::Refused { epoch: e });
    // Eligible again, then the primary goes silent for QoS: granted, idempotently.
    arb.handle(20_001, a, &ping(Some(b), 3));
    let granted = arb.handle(23_001, b, &ArbiterRequest::Takeover { epoch: e });
    let new = next_epoch(e, b);
    assert_eq!(granted, ArbiterAnswer::Granted { epoch: new });
    assert_eq!(arb.handle(23_002, b, &ArbiterRequest::Takeover { epoch: e }), granted);
    // The old primary learns a failover happened.
    assert_eq!(arb.handle(23_003, a, &ping(None, 4)), ArbiterAnswer::NewerEpoch { epoch: new });
}

#[test]
fn epochs_from_outside_are_checked_against_a_bounded_step() {
    assert_eq!(check_epoch(0, 0), Ok(()));
    assert_eq!(check_epoch(MAX_EPOCH_STEP, 0), Ok(()));
    assert_eq!(check_epoch(MAX_EPOCH_STEP + 1, 0), Err(ImplausibleEpoch { epoch: MAX_EPOCH_STEP + 1, known: 0 }));
    assert_eq!(check_epoch(1000 + MAX_EPOCH_STEP, 1000), Ok(()));
    // Never above MAX_EPOCH, whatever is known; and the check itself cannot wrap.
    assert!(check_epoch(MAX_EPOCH + 1, MAX_EPOCH).is_err());
    assert!(check_epoch(u64::MAX, u64::MAX - 1).is_err());
    // Any epoch a process accepts leaves room for takeovers without overflow.
    assert!(next_epoch(MAX_EPOCH, MemberId(15)) > MAX_EPOCH);
    let err = check_epoch(u64::MAX - 3, 16).unwrap_err().to_string();
    assert!(err.contains("implausible epoch 18446744073709551612") && err.contains("known here is 16"), "{err}");
}

/// Regression: one `ARBITER ASK` with an epoch near `u64::MAX` made the primary demote
/// itself and persist that epoch; the next takeover wrapped the epoch arithmetic.
#[test]
fn an_implausible_epoch_is_refused_whole_and_never_persisted() {
    let (a, b) = (MemberId(0), MemberId(1));
    let (mut primary, _) = Member::create_primary(config(), a, 0);
    let epoch = primary.epoch();
    let huge = u64::MAX - 3;
    let events = [
        Event::Arbiter(ArbiterAnswer::NewerEpoch { epoch: huge }),
        Event::Arbiter(ArbiterAnswer::Pong {
            incarnation: 1,
            epoch: huge,
            primary: Some(b),
            eligible: None,
            mode_seq: 1,
            other_connected: true,
        }),
        Event::Message { from: b, msg: Message::NewerEpoch { epoch: epoch + MAX_EPOCH_STEP + 1 } },
        Event::Message {
            from: b,
            msg: Message::Journal {
                epoch,
                journal: JournalSummary::from_segments(&[(epoch, 1), (huge, 2)]),
                acked: 0,
                active: false,
                sent_at: 1,
            },
        },
    ];
    for (i, event) in events.into_iter().enumerate() {
        let now = 10 + i as Millis;
        let commands = primary.step(now, event.clone());
        assert!(
            commands
                .iter()
                .any(|c| matches!(c, Command::Log(LogLine::ImplausibleEpoch { known, .. }) if *known == epoch)),
            "{event:?} was not refused: {commands:?}"
        );
        assert!(
            !commands.iter().any(|c| matches!(c, Command::PersistEpoch(_) | Command::DemoteToBackup { .. })),
            "{event:?} changed the epoch: {commands:?}"
        );
        assert!(primary.is_primary() && primary.epoch() == epoch, "{event:?}");
    }
    // A follower told of an implausible epoch by an agent does not take over with it.
    let mut follower = Member::start(config(), b, Durable { epoch, ..Durable::default() }, 0);
    let down = AgentAnswer { member: a, state: InstanceState::Down, epoch: huge, journal: JournalSummary::new() };
    let commands = follower.step(10_000, Event::Agent(down));
    assert!(!commands.iter().any(|c| matches!(c, Command::PersistEpoch(_))), "{commands:?}");
    assert_eq!(follower.epoch(), epoch);
    // A plausible newer epoch still demotes the primary, as before.
    let newer = next_epoch(epoch, b);
    let commands = primary.step(100, Event::Arbiter(ArbiterAnswer::NewerEpoch { epoch: newer }));
    assert!(commands.contains(&Command::PersistEpoch(newer)), "{commands:?}");
}

#[test]
fn the_arbiter_refuses_an_implausible_epoch_before_recording_it() {
    let (a, b) = (MemberId(0), MemberId(1));
    let mut arb = Arbiter::new(1, 3000, vec![a, b]);
    let huge = ArbiterRequest::Ping { epoch: u64::MAX - 3, primary: true, eligible: None, mode_seq: 1 };
    assert!(arb.check(&huge).is_err());
    assert!(arb.check(&ArbiterRequest::Takeover { epoch: MAX_EPOCH_STEP + 1 }).is_err());
    let ok = ArbiterRequest::Ping { epoch: next_epoch(0, a), primary: true, eligible: None, mode_seq: 1 };
    assert_eq!(arb.check(&ok), Ok(()));
    arb.handle(0, a, &ok);
    assert_eq!(arb.epoch(), next_epoch(0, a));
}

fn config() -> MirrorConfig {
    MirrorConfig {
        members: vec![
            MemberSpec { id: MemberId(0), kind: MemberKind::Failover },
            MemberSpec { id: MemberId(1), kind: MemberKind::Failover },
            MemberSpec { id: MemberId(2), kind: MemberKind::DrAsync },
        ],
        arbiter: true,
        timing: Timing::default(),
    }
}

/// Runs `steps` against `member` and renders each as `@now event`, `---`, one command per
/// line; compares with `testdata/<name>.golden` (regenerate with `UPDATE_GOLDEN=1`).
fn golden(name: &str, member: &mut Member, first: Vec<Command>, steps: Vec<(Millis, Event)>) {
    let mut text = String::from("@0 start\n---\n");
    for c in first {
        text += &format!("{c:?}\n");
    }
    for (now, event) in steps {
        text += &format!("\n@{now} {event:?}\n---\n");
        for c in member.step(now, event) {
            text += &format!("{c:?}\n");
        }
    }
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/mirror/failover/testdata/{name}.golden"));
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(expected == text, "{name}: decisions differ from {}\n--- got:\n{text}", path.display());
}

#[test]
fn golden_primary_loses_backup_in_arbiter_controlled_mode() {
    let (a, b) = (MemberId(0), MemberId(1));
    let (mut m, first) = Member::create_primary(config(), a, 0);
    let e = m.epoch();
    let pong = |eligible, mode_seq| {
        Event::Arbiter(ArbiterAnswer::Pong {
            incarnation: 1,
            epoch: e,
            primary: Some(a),
            eligible,
            mode_seq,
            other_connected: true,
        })
    };
    golden(
        "primary_loses_backup",
        &mut m,
        first,
        vec![
            (10, Event::Tick),
            (20, Event::Message { from: b, msg: Message::JournalAck { epoch: e, end: 0, sent_at: 10 } }),
            (30, pong(Some(b), 1)),
            (40, Event::JournalAppended { upto: 1 }),
            (50, Event::Message { from: b, msg: Message::JournalAck { epoch: e, end: 1, sent_at: 40 } }),
            (60, Event::Connection { peer: b, up: false }),
            (70, Event::JournalAppended { upto: 2 }),
            (1_500, Event::Tick),
            (1_510, pong(None, 2)),
            (1_520, Event::Tick),
        ],
    );
}

#[test]
fn golden_backup_takes_over_through_the_arbiter() {
    let (a, b) = (MemberId(0), MemberId(1));
    let mut m = Member::start(config(), b, Durable::default(), 0);
    let e = next_epoch(0, a);
    let first = m.step(0, Event::Databases(vec![DatabaseStatus::Dejournaling]));
    let journal = JournalSummary::from_records(&[e, e]);
    golden(
        "backup_takes_over",
        &mut m,
        first,
        vec![
            (
                100,
                Event::Message {
                    from: a,
                    msg: Message::Journal { epoch: e, journal, acked: 2, active: true, sent_at: 90 },
                },
            ),
            (3_100, Event::Tick),
            (3_200, Event::Arbiter(ArbiterAnswer::Granted { epoch: next_epoch(e, b) })),
            (4_000, Event::Tick),
            (4_100, Event::JournalAppended { upto: 3 }),
            (5_000, Event::Message { from: a, msg: Message::JournalAck { epoch: e, end: 2, sent_at: 80 } }),
            (
                5_010,
                Event::Message {
                    from: a,
                    msg: Message::Journal {
                        epoch: e,
                        journal: JournalSummary::from_records(&[e, e, e]),
                        acked: 2,
                        active: false,
                        sent_at: 95,
                    },
                },
            ),
        ],
    );
}

#[test]
fn a_summary_from_another_process_is_checked() {
    assert_eq!(JournalSummary::checked(&[]).unwrap().end(), 0);
    assert_eq!(JournalSummary::checked(&[(16, 3), (33, 9)]).unwrap().end(), 9);
    for bad in [&[(16, 0)][..], &[(16, 3), (16, 5)], &[(16, 3), (33, 3)], &[(33, 3), (16, 5)]] {
        let e = JournalSummary::checked(bad).unwrap_err();
        assert!(e.contains("does not increase"), "{bad:?}: {e}");
    }
    let long: Vec<(u64, u64)> = (1..=4097).map(|i| (i, i)).collect();
    assert!(JournalSummary::checked(&long).unwrap_err().contains("at most 4096"));
}

#[test]
fn only_an_open_primary_within_its_lease_is_acknowledging() {
    let cfg = config();
    let (mut a, _) = Member::create_primary(cfg.clone(), MemberId(0), 0);
    // Alone, open once the guard passed: the window runs ack_lease past every step.
    let _ = a.step(10, Event::Tick);
    let lease = cfg.timing.ack_lease();
    assert_eq!(a.acking_until(10), Some(10 + lease));
    let b = Member::start(cfg, MemberId(1), Durable::default(), 0);
    assert_eq!(b.acking_until(10), None, "a follower never acknowledges");
}

#[test]
fn a_rewind_cuts_the_followers_summary_and_keeps_it_promotable() {
    let cfg = config();
    let journal = JournalSummary::from_records(&[16, 16, 16]);
    let mut b = Member::start(cfg, MemberId(1), Durable { epoch: 16, journal, no_failover: false }, 0);
    let _ = b.step(0, Event::Databases(vec![DatabaseStatus::Dejournaling]));
    let _ = b.step(10, Event::JournalRewound { to: 1 });
    assert_eq!(b.journal().end(), 1);
    assert_eq!(b.epoch(), 16, "the epoch is kept");
}

#[test]
fn a_data_acknowledgement_confirms_records_but_never_grants_a_lease() {
    let (a, b) = (MemberId(0), MemberId(1));
    let (mut m, _) = Member::create_primary(config(), a, 0);
    let e = m.epoch();
    let _ = m.step(10, Event::Tick);
    // The backup's data acknowledgement alone: active, but no lease, so nothing is confirmed.
    let _ = m.step(20, Event::DataAck { from: b, end: 0 });
    assert_eq!(m.active_backup(), Some(b));
    let _ = m.step(25, Event::JournalAppended { upto: 2 });
    let out = m.step(30, Event::DataAck { from: b, end: 2 });
    assert!(!out.iter().any(|c| matches!(c, Command::AckCommits { .. })), "{out:?}");
    // Its acknowledgement of a journal message starts the lease: now records are confirmed.
    let out = m.step(40, Event::Message { from: b, msg: Message::JournalAck { epoch: e, end: 2, sent_at: 35 } });
    let lease = config().timing.ack_lease();
    assert!(out.contains(&Command::AckCommits { upto: 2, send_before: 35 + lease }), "{out:?}");
    // Later data acknowledgements confirm more, within the same lease only.
    let _ = m.step(50, Event::JournalAppended { upto: 3 });
    let out = m.step(60, Event::DataAck { from: b, end: 3 });
    assert!(out.contains(&Command::AckCommits { upto: 3, send_before: 35 + lease }), "{out:?}");
}

/// The primary's journal purge floor (docs/design/mirroring.md, "Purge"), from what the
/// machine saw: acknowledgements and connections.
#[test]
fn the_purge_floor_keeps_what_other_members_need() {
    use super::member::ASYNC_PURGE_HOLD_MS;
    let (a, b, d) = (MemberId(0), MemberId(1), MemberId(2));
    let (mut m, _) = Member::create_primary(config(), a, 0);
    let e = m.epoch();
    let _ = m.step(10, Event::JournalAppended { upto: 900 });
    assert_eq!(m.purge_floor(20), 1, "members not seen yet need everything");
    for (peer, end) in [(b, 900), (d, 400)] {
        let _ = m.step(30, Event::Connection { peer, up: true });
        let _ = m.step(40, Event::Message { from: peer, msg: Message::JournalAck { epoch: e, end, sent_at: 30 } });
    }
    assert_eq!(m.purge_floor(50), 401, "the member furthest behind sets the floor");
    // The DR async goes away: it holds purges back for 14 days, then no longer.
    let _ = m.step(100, Event::Connection { peer: d, up: false });
    assert_eq!(m.purge_floor(100 + ASYNC_PURGE_HOLD_MS - 1), 401);
    assert_eq!(m.purge_floor(100 + ASYNC_PURGE_HOLD_MS), 901);
    // A failover member holds them back however long it is away.
    let _ = m.step(200, Event::Connection { peer: b, up: false });
    assert_eq!(m.purge_floor(200 + 10 * ASYNC_PURGE_HOLD_MS), 901);
    let follower = Member::start(config(), b, Durable::default(), 0);
    assert_eq!(follower.purge_floor(0), 0, "followers set no floor");
}

#[test]
fn only_caught_up_databases_make_a_member_promotable() {
    for s in DatabaseStatus::ALL {
        assert_eq!(DatabaseStatus::from_word(s.word()), Some(s));
        assert_eq!(s.ready(), matches!(s, DatabaseStatus::Normal | DatabaseStatus::Dejournaling), "{s:?}");
    }
    assert_eq!(DatabaseStatus::from_word("Caught Up"), None);
}

/// A primary acknowledging alone that did not step for longer than the pause bound (it
/// was stopped) is in trouble at its next step: it answers the health check as primary
/// again only on word received after the pause (here the arbiter confirming a new
/// declaration), never on a lease it gives itself from its own clock.
#[test]
fn an_alone_primary_after_a_pause_needs_fresh_word_before_acknowledging() {
    let a = MemberId(0);
    let (mut m, _) = Member::create_primary(config(), a, 0);
    let e = m.epoch();
    let bound = config().timing.pause_bound();
    m.step(10, Event::Tick);
    assert!(m.acking_until(10).is_some(), "alone, it acknowledges");
    let out = m.step(10 + bound, Event::Tick);
    assert!(!out.iter().any(|c| matches!(c, Command::Log(LogLine::Paused { .. }))), "a gap of the bound is no pause");
    assert!(m.acking_until(10 + bound).is_some());
    let resumed = 10 + 2 * bound + 1;
    let out = m.step(resumed, Event::Tick);
    assert!(out.contains(&Command::Log(LogLine::Paused { gap: bound + 1 })), "{out:?}");
    assert_eq!(m.status(), MemberStatus::InTrouble);
    assert_eq!(m.acking_until(resumed), None, "no health check answered as primary");
    let declaration = ArbiterRequest::Ping { epoch: e, primary: true, eligible: None, mode_seq: 1 };
    assert!(out.contains(&Command::AskArbiter(declaration)), "{out:?}");
    let pong = |mode_seq| {
        Event::Arbiter(ArbiterAnswer::Pong {
            incarnation: 1,
            epoch: e,
            primary: Some(a),
            eligible: None,
            mode_seq,
            other_connected: false,
        })
    };
    // An answer to a ping sent before the pause is not word about the pause.
    m.step(resumed + 5, pong(0));
    assert_eq!(m.acking_until(resumed + 5), None);
    let out = m.step(resumed + 10, pong(1));
    assert!(out.contains(&Command::Log(LogLine::ContinuingAlone)), "{out:?}");
    assert!(m.acking_until(resumed + 10).is_some());
}
