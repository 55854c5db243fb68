//! The built-in `count` step (docs/steps.md) in a keyed session: its windows kept as `window` keeps them (map cell
//! `windows`: the window start as an i64 big-endian then the key's UTF-8 bytes, to the count as an i64 little-endian)
//! and fired by an event-time timer at each window's end - 1. Its outputs are those it gives in a session that is not
//! keyed (whole-instance state and watermarks, which the golden vectors hold), which each test here runs beside it.

use std::collections::BTreeMap;

use crate::harness::tests::texts;
use crate::harness::StepHarness;
use crate::record::Record;
use crate::session::{Session, StepSpec};
use crate::step::TimeDomain;

const CONFIG: &str = r#"{"window_ms": 10, "key_json_field": "user"}"#;

fn record(user: &str, timestamp: i64) -> Record {
    Record { payload: format!(r#"{{"user": "{user}"}}"#).into_bytes(), timestamp, ..Default::default() }
}

fn result(key: &str, start: i64, count: i64) -> String {
    format!(r#"{{"key":"{key}","window_start":{start},"window_end":{},"count":{count}}}"#, start + 10)
}

fn entry(start: i64, key: &str) -> Vec<u8> {
    [&start.to_be_bytes()[..], key.as_bytes()].concat()
}

/// The same step in a keyed session (records keyed by their user) and as it ran before in a keyed segment, an instance
/// per key group with whole-instance state (each user a key group of its own, numbered by its first letter, so that key
/// group order is key order).
struct Both {
    keyed: StepHarness,
    whole: StepHarness,
}

impl Both {
    fn new(config: &str) -> Both {
        Both { keyed: StepHarness::named("c", "count", config).unwrap(), whole: StepHarness::named("c", "count", config).unwrap() }
    }

    fn add(&mut self, user: &str, timestamp: i64) {
        let key_group = Some(u32::from(user.as_bytes()[0]));
        assert!(self.keyed.process_keyed(key_group, user.as_bytes(), record(user, timestamp)).unwrap().is_empty());
        assert!(self.whole.process(key_group, record(user, timestamp)).unwrap().is_empty());
    }

    /// The keyed session's outputs, which are the other's.
    fn watermark(&mut self, timestamp: i64) -> Vec<Record> {
        let fired = self.keyed.watermark(timestamp).unwrap();
        assert_eq!(fired, self.whole.watermark(timestamp).unwrap());
        fired
    }

    /// The key's windows as its map cell holds them.
    fn windows(&mut self, key: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let cell = self.keyed.map_cell("windows").unwrap();
        self.keyed.with_key(key.as_bytes(), || cell.entries().unwrap()).unwrap()
    }
}

#[test]
fn an_in_order_stream_of_several_keys_gives_the_outputs_of_a_session_that_is_not_keyed() {
    let mut count = Both::new(CONFIG);
    for (user, timestamp) in [("a", 1), ("b", 3), ("a", 5), ("c", 12), ("a", 14)] {
        count.add(user, timestamp);
    }
    assert_eq!(count.keyed.pending_timers(b"a"), [(TimeDomain::EventTime, 9), (TimeDomain::EventTime, 19)], "a timer at each window's end - 1");
    assert_eq!(count.keyed.pending_timers(b"c"), [(TimeDomain::EventTime, 19)]);
    assert_eq!(count.windows("a"), [(entry(0, "a"), 2i64.to_le_bytes().to_vec()), (entry(10, "a"), 1i64.to_le_bytes().to_vec())]);

    assert!(count.watermark(8).is_empty());
    let fired = count.watermark(10);
    assert_eq!(texts(&fired), [result("a", 0, 2), result("b", 0, 1)]);
    assert_eq!((fired[0].timestamp, fired[0].headers.get("key").map(String::as_str)), (9, Some("a")), "window_end - 1, header key");
    assert_eq!(count.windows("a"), [(entry(10, "a"), 1i64.to_le_bytes().to_vec())], "a fired window is dropped");
    assert_eq!(texts(&count.watermark(25)), [result("a", 10, 1), result("c", 10, 1)]);
    assert!(count.keyed.checkpoint().unwrap().is_empty(), "no whole-instance state in a keyed session");
}

/// A record for a window that fired opens it again: its timer, behind the watermark, fires at the next one.
#[test]
fn a_record_behind_the_watermark_is_counted_again_and_emitted_at_the_next_watermark() {
    let mut count = Both::new(CONFIG);
    count.add("a", 4);
    assert_eq!(texts(&count.watermark(20)), [result("a", 0, 1)]);
    count.add("a", 3);
    count.add("a", 7);
    assert_eq!(count.keyed.pending_timers(b"a"), [(TimeDomain::EventTime, 9)], "set behind the watermark");
    let again = count.watermark(21);
    assert_eq!(texts(&again), [result("a", 0, 2)]);
    assert!(!again[0].headers.contains_key("late"), "no late header: that is window's");
}

#[test]
fn the_end_of_input_fires_every_window_in_order_per_key() {
    let mut count = Both::new(CONFIG);
    for timestamp in [25, 3, -4] {
        count.add("a", timestamp);
    }
    assert_eq!(texts(&count.watermark(i64::MAX)), [result("a", -10, 1), result("a", 0, 1), result("a", 20, 1)]);
    assert!(count.keyed.pending_timers(b"a").is_empty());
    assert!(count.windows("a").is_empty());
}

/// Without key_header or key_json_field, or a record without the field, the key is "", as in a session not keyed.
#[test]
fn the_key_is_empty_when_not_configured_or_missing() {
    let mut count = Both::new(r#"{"window_ms": 10}"#);
    count.add("a", 1);
    count.add("b", 2);
    assert_eq!(texts(&count.watermark(10)), [result("", 0, 1), result("", 0, 1)], "a window per pipeline key, as the whole-instance one has one per key group");

    let mut count = Both::new(CONFIG);
    for (payload, timestamp) in [("{}", 1), ("not json", 2)] {
        count.keyed.process_keyed(Some(1), b"k", Record { payload: payload.into(), timestamp, ..Default::default() }).unwrap();
    }
    assert_eq!(count.windows("k"), [(entry(0, ""), 2i64.to_le_bytes().to_vec())]);
    assert_eq!(texts(&count.keyed.end_input().unwrap()), [result("", 0, 2)]);
}

#[test]
fn a_checkpoint_carries_the_windows_in_their_cells() {
    let mut count = Both::new(CONFIG);
    count.add("a", 1);
    count.add("b", 12);
    let writes = count.keyed.checkpoint_cells().unwrap();
    assert!(count.keyed.checkpoint().unwrap().is_empty(), "no whole-instance state");

    // A new harness given the cells holds the windows (the timers are Flink's, not restored by the harness: the
    // records after set them again).
    let mut restored = StepHarness::named("c", "count", CONFIG).unwrap();
    restored.restore_cells(&writes).unwrap();
    restored.process_keyed(Some(1), b"a", record("a", 2)).unwrap();
    restored.process_keyed(Some(1), b"b", record("b", 15)).unwrap();
    assert_eq!(texts(&restored.watermark(9).unwrap()), [result("a", 0, 2)]);
    assert_eq!(texts(&restored.end_input().unwrap()), [result("b", 10, 2)]);
}

#[test]
fn whole_instance_state_holding_open_windows_is_refused_in_a_keyed_session() {
    let mut whole = StepHarness::named("c", "count", CONFIG).unwrap();
    whole.process(Some(3), record("a", 1)).unwrap();
    whole.process(Some(3), record("b", 2)).unwrap();
    let open = whole.checkpoint().unwrap();
    whole.end_input().unwrap();
    let emptied = whole.checkpoint().unwrap();

    let keyed_session = || {
        let spec = StepSpec { name: "c".into(), step_type: "count".into(), config_json: CONFIG.into(), dead_letter: false };
        Session::open("s".into(), vec![spec], true).unwrap()
    };
    let error = keyed_session().restore(open).unwrap_err();
    assert!(error.starts_with("key group 3: step 'c' (count): the checkpoint holds 2 open windows as whole-instance state"), "{error}");
    // No open window (what a session that was not keyed snapshots once they all fired) restores.
    assert_eq!(emptied, BTreeMap::from([(Some(3), [&1i32.to_be_bytes()[..], &5i32.to_be_bytes(), &[2, 0, 0, 0, 0]].concat())]));
    keyed_session().restore(emptied).unwrap();
}

#[test]
fn a_keyed_session_declares_the_windows_cell_and_timers_and_one_that_is_not_keyed_neither() {
    let spec = || vec![StepSpec { name: "c".into(), step_type: "count".into(), config_json: r#"{"window_ms": 10}"#.into(), dead_letter: false }];
    let keyed = Session::open("s".into(), spec(), true).unwrap();
    assert!(keyed.has_timers());
    let cells: Vec<_> = keyed.cell_declarations().into_iter().map(|d| (d.name, d.kind)).collect();
    assert_eq!(cells, [("windows".to_string(), crate::cells::CellKind::Map)]);
    let unkeyed = Session::open("s".into(), spec(), false).unwrap();
    assert!(!unkeyed.has_timers() && unkeyed.cell_declarations().is_empty());
}

#[test]
fn a_cell_that_holds_no_count_fails_the_record() {
    let mut count = Both::new(CONFIG);
    let cell = count.keyed.map_cell("windows").unwrap();
    count.keyed.with_key(b"a", || cell.put(entry(0, "a"), [1u8]).unwrap()).unwrap();
    let error = count.keyed.process_keyed(Some(1), b"a", record("a", 1)).unwrap_err();
    assert!(error.starts_with("step 'c' (count) failed: "), "{error}");
    assert!(error.contains("in cell 'windows' is 1 bytes, not the 8 of an i64 little-endian"), "{error}");
}
