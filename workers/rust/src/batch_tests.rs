//! The built-in `batch` step (docs/steps.md) in a keyed session: one open batch per key in its value cell `batch`,
//! closed by timers (a processing-time one at its clock + max_wait_ms, an event-time one at the end of input) or at
//! max_count. Run by `StepHarness` (harness.rs) as the bridge runs it, and through a `Session` where the harness
//! cannot hold a timer back.

use std::collections::BTreeMap;

use crate::cells::tests::{load_of, ops};
use crate::harness::tests::texts;
use crate::harness::StepHarness;
use crate::proto::{CellOp, TimerChange, TimerFiring, TimerOp};
use crate::record::Record;
use crate::session::{Input, Session, StepSpec};
use crate::step::TimeDomain;

const END: i64 = i64::MAX;

fn record(payload: &str, timestamp: i64) -> Record {
    let mut r = Record { payload: payload.as_bytes().to_vec(), timestamp, ..Default::default() };
    r.headers.insert("h".into(), payload.into());
    r
}

fn batch(config: &str) -> StepHarness {
    StepHarness::named("b", "batch", config).unwrap()
}

fn add(harness: &mut StepHarness, key: &str, payload: &str, timestamp: i64) -> Vec<Record> {
    harness.process_keyed(Some(1), key.as_bytes(), record(payload, timestamp)).unwrap()
}

/// The key's open batch as its cell holds it, None when it holds none.
fn stored(harness: &mut StepHarness, key: &str) -> Option<Vec<u8>> {
    let cell = harness.value_cell("batch").unwrap();
    harness.with_key(key.as_bytes(), || cell.get().unwrap()).unwrap()
}

/// A batch encoded as the whole-instance state encodes one: version 2, opened-at, count, then each record's
/// timestamp, headers and payload.
fn encoded(opened_at: i64, records: &[(&str, i64)]) -> Vec<u8> {
    let mut out = vec![2u8];
    out.extend_from_slice(&opened_at.to_be_bytes());
    out.extend_from_slice(&(records.len() as i32).to_be_bytes());
    for (payload, timestamp) in records {
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        for text in ["h", payload] {
            out.extend_from_slice(&(text.len() as i32).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        out.extend_from_slice(payload.as_bytes());
    }
    out
}

#[test]
fn a_quiet_keys_batch_closes_once_processing_time_passes_max_wait() {
    let mut b = batch(r#"{"max_count": 10, "max_wait_ms": 100}"#);
    b.set_processing_time(1_000).unwrap();
    assert!(add(&mut b, "a", "1", 5).is_empty());
    assert_eq!(b.pending_timers(b"a"), [(TimeDomain::EventTime, END), (TimeDomain::ProcessingTime, 1_100)], "the CLOCK's time + max_wait_ms");
    b.set_processing_time(1_050).unwrap();
    assert!(add(&mut b, "a", "2", 7).is_empty());
    assert_eq!(b.pending_timers(b"a"), [(TimeDomain::EventTime, END), (TimeDomain::ProcessingTime, 1_100)], "a record joining sets no timer");
    assert_eq!(stored(&mut b, "a"), Some(encoded(1_000, &[("1", 5), ("2", 7)])));
    assert!(b.watermark(1_000_000).unwrap().is_empty(), "a watermark closes no batch in a keyed session");

    assert!(b.set_processing_time(1_099).unwrap().is_empty());
    let closed = b.set_processing_time(1_100).unwrap();
    assert_eq!(texts(&closed), ["[1,2]"]);
    assert_eq!((closed[0].headers.get("batch_size").map(String::as_str), closed[0].headers.get("h").map(String::as_str), closed[0].timestamp), (Some("2"), Some("1"), 7));
    assert!(b.pending_timers(b"a").is_empty(), "the firing deleted the event-time timer");
    assert_eq!(stored(&mut b, "a"), None);
    assert!(b.end_input().unwrap().is_empty());
    assert!(b.checkpoint().unwrap().is_empty(), "no whole-instance state");
}

#[test]
fn max_count_closes_at_once_and_deletes_the_timers() {
    let mut b = batch(r#"{"max_count": 2, "max_wait_ms": 100}"#);
    b.set_processing_time(1_000).unwrap();
    assert!(add(&mut b, "a", "1", 1).is_empty());
    assert_eq!(texts(&add(&mut b, "a", "2", 2)), ["[1,2]"]);
    assert!(b.pending_timers(b"a").is_empty());
    assert_eq!(stored(&mut b, "a"), None);
    assert!(b.set_processing_time(2_000).unwrap().is_empty());
    // The next record opens a new batch, with timers of its own.
    assert!(add(&mut b, "a", "3", 3).is_empty());
    assert_eq!(b.pending_timers(b"a"), [(TimeDomain::EventTime, END), (TimeDomain::ProcessingTime, 2_100)]);
    let writes = b.checkpoint_cells().unwrap();
    assert_eq!(ops(&writes[0]), [(0, CellOp::Set, Vec::new(), encoded(2_000, &[("3", 3)]))]);
}

#[test]
fn end_of_input_emits_every_open_batch_by_its_event_time_timer_and_two_keys_batch_apart() {
    let mut b = batch(r#"{"max_count": 2, "max_wait_ms": 100}"#);
    b.set_processing_time(1_000).unwrap();
    assert!(add(&mut b, "b", "b1", 1).is_empty());
    assert!(add(&mut b, "a", "a1", 2).is_empty());
    assert_eq!(texts(&add(&mut b, "a", "a2", 3)), ["[\"a1\",\"a2\"]"], "a's batch is full; b's holds one");
    b.set_processing_time(1_020).unwrap();
    assert!(add(&mut b, "a", "a3", 4).is_empty());
    assert_eq!(b.pending_timers(b"a"), [(TimeDomain::EventTime, END), (TimeDomain::ProcessingTime, 1_120)]);
    assert_eq!(b.pending_timers(b"b"), [(TimeDomain::EventTime, END), (TimeDomain::ProcessingTime, 1_100)]);

    let ended = b.end_input().unwrap();
    assert_eq!(texts(&ended), ["[\"a3\"]", "[\"b1\"]"], "in key order, as the timers fire");
    assert_eq!(ended.iter().map(|r| r.timestamp).collect::<Vec<_>>(), [4, 1]);
    assert!(b.pending_timers(b"a").is_empty() && b.pending_timers(b"b").is_empty(), "each firing deleted the processing-time timer");
    assert!(b.set_processing_time(5_000).unwrap().is_empty());
}

#[test]
fn a_checkpoint_mid_batch_keeps_the_batch_in_its_cell_and_its_timers_pending() {
    let config = r#"{"max_count": 3, "max_wait_ms": 100}"#;
    let mut b = batch(config);
    b.set_processing_time(1_000).unwrap();
    add(&mut b, "a", "1", 1);
    let writes = b.checkpoint_cells().unwrap();
    assert_eq!(ops(&writes[0]), [(0, CellOp::Set, Vec::new(), encoded(1_000, &[("1", 1)]))]);
    assert!(b.checkpoint().unwrap().is_empty(), "no whole-instance state");
    assert_eq!(b.pending_timers(b"a"), [(TimeDomain::EventTime, END), (TimeDomain::ProcessingTime, 1_100)]);
    assert_eq!(texts(&b.set_processing_time(1_100).unwrap()), ["[1]"]);

    // A new harness given the cells holds the open batch: a record joins it (the timers are Flink's, not restored
    // by the harness, so it sets none), and the third closes it.
    let mut restored = batch(config);
    restored.restore_cells(&writes).unwrap();
    restored.set_processing_time(1_050).unwrap();
    assert!(add(&mut restored, "a", "2", 2).is_empty());
    assert!(restored.pending_timers(b"a").is_empty());
    assert_eq!(stored(&mut restored, "a"), Some(encoded(1_000, &[("1", 1), ("2", 2)])));
    assert_eq!(texts(&add(&mut restored, "a", "3", 3)), ["[1,2,3]"]);
}

fn keyed_session(config: &str) -> Session {
    let spec = StepSpec { name: "b".into(), step_type: "batch".into(), config_json: config.into(), dead_letter: false };
    Session::open("s".into(), vec![spec], true).unwrap()
}

fn change(op: TimerOp, domain: TimeDomain, timestamp: i64) -> TimerChange {
    TimerChange { op: op as i32, step: 0, domain: domain.to_proto() as i32, timestamp }
}

#[test]
fn a_record_after_max_wait_but_before_the_timer_fired_joins_the_batch_that_the_firing_closes() {
    let mut session = keyed_session(r#"{"max_count": 10, "max_wait_ms": 100}"#);
    let mut out = Vec::new();
    session.serve(Input::Clock(1_000), &mut out).unwrap();
    session.serve(Input::Load(1, load_of(b"a", Vec::new())), &mut out).unwrap();
    session.serve(Input::Record(Some(3), Some(b"a".to_vec()), record("1", 1)), &mut out).unwrap();
    let set = session.timer_changes().unwrap().changes;
    assert_eq!(set, [change(TimerOp::Set, TimeDomain::ProcessingTime, 1_100), change(TimerOp::Set, TimeDomain::EventTime, END)]);
    session.serve(Input::Clock(1_250), &mut out).unwrap();
    session.serve(Input::Record(Some(3), Some(b"a".to_vec()), record("2", 2)), &mut out).unwrap();
    assert!(out.is_empty());
    assert!(session.timer_changes().is_none());
    session.serve(Input::Watermark(END - 1), &mut out).unwrap();
    assert!(out.is_empty(), "a watermark closes no batch in a keyed session");

    let firing = TimerFiring { timestamp: 1_100, step: 0, domain: TimeDomain::ProcessingTime.to_proto() as i32 };
    session.serve(Input::Timer(Some(3), b"a".to_vec(), firing), &mut out).unwrap();
    assert_eq!(texts(&out), ["[1,2]"]);
    assert_eq!(session.timer_changes().unwrap().changes, [change(TimerOp::Delete, TimeDomain::EventTime, END)]);
    // A firing that finds no open batch emits nothing.
    let firing = TimerFiring { timestamp: END, step: 0, domain: TimeDomain::EventTime.to_proto() as i32 };
    out.clear();
    session.serve(Input::Timer(Some(3), b"a".to_vec(), firing), &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn a_keyed_session_declares_the_cell_and_timers_and_one_that_is_not_keyed_neither() {
    let session = keyed_session("");
    assert!(session.has_timers());
    let cells: Vec<_> = session.cell_declarations().into_iter().map(|d| (d.name, d.kind)).collect();
    assert_eq!(cells, [("batch".to_string(), crate::cells::CellKind::Value)]);
    let spec = StepSpec { name: "b".into(), step_type: "batch".into(), config_json: String::new(), dead_letter: false };
    let unkeyed = Session::open("s".into(), vec![spec], false).unwrap();
    assert!(!unkeyed.has_timers() && unkeyed.cell_declarations().is_empty());
}

#[test]
fn whole_instance_state_with_an_open_batch_is_not_restored_into_a_keyed_session() {
    // The segment's encoding: one step state behind its length.
    let segment = |step: Vec<u8>| [&1i32.to_be_bytes()[..], &(step.len() as i32).to_be_bytes(), &step].concat();
    let open = BTreeMap::from([(Some(4), segment(encoded(1_000, &[("1", 1)])))]);
    let error = keyed_session("").restore(open.clone()).unwrap_err();
    assert!(error.starts_with("key group 4: step 'b' (batch): the checkpoint holds an open batch of 1 records as whole-instance state"), "{error}");
    // No open batch (what a session that was not keyed snapshots between batches) restores.
    keyed_session("").restore(BTreeMap::from([(Some(4), segment(encoded(1_000, &[])))])).unwrap();
}
