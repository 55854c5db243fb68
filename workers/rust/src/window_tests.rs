//! The built-in `window` step (docs/steps.md), run by `StepHarness` (harness.rs) as a keyed session runs it: its
//! cells loaded and written back, its event-time timers fired as the bridge fires them before a watermark.

use crate::harness::tests::texts;
use crate::harness::StepHarness;
use crate::proto::CellOp;
use crate::record::Record;
use crate::session::{Refused, Session, StepSpec};
use crate::step::TimeDomain;

fn record(payload: &str, key: &str, timestamp: i64) -> Record {
    let mut r = Record { payload: payload.as_bytes().to_vec(), timestamp, ..Default::default() };
    r.headers.insert("k".into(), key.into());
    r
}

fn window(config: &str) -> StepHarness {
    StepHarness::named("w", "window", config).unwrap()
}

/// A record of the step's key `key` and JSON payload, under the (Flink) key "user".
fn add(harness: &mut StepHarness, key: &str, payload: &str, timestamp: i64) -> Result<Vec<Record>, String> {
    harness.process_keyed(Some(1), b"user", record(payload, key, timestamp))
}

#[test]
fn tumbling_windows_count_per_key_and_fire_once_the_watermark_passes_their_end_in_key_order() {
    let mut w = window(r#"{"key_header": "k", "size_ms": 10}"#);
    for (key, timestamp) in [("b", 3), ("a", 1), ("a", 5), ("a", 12)] {
        assert!(add(&mut w, key, "{}", timestamp).unwrap().is_empty());
    }
    assert_eq!(w.pending_timers(b"user"), [(TimeDomain::EventTime, 9), (TimeDomain::EventTime, 19)]);
    assert!(w.watermark(8).unwrap().is_empty());
    let fired = w.watermark(9).unwrap();
    assert_eq!(texts(&fired), [r#"{"key":"a","window_start":0,"window_end":10,"count":2}"#, r#"{"key":"b","window_start":0,"window_end":10,"count":1}"#]);
    assert_eq!((fired[0].timestamp, fired[0].headers.get("key").map(String::as_str)), (9, Some("a")));
    assert_eq!(w.pending_timers(b"user"), [(TimeDomain::EventTime, 19)]);
    assert_eq!(texts(&w.end_input().unwrap()), [r#"{"key":"a","window_start":10,"window_end":20,"count":1}"#]);
    assert!(w.pending_timers(b"user").is_empty());

    let writes = w.checkpoint_cells().unwrap();
    let fired_until: Vec<_> = crate::cells::tests::ops(&writes[0]).into_iter().filter(|(cell, ..)| *cell == 1).collect();
    assert_eq!(fired_until, [(1, CellOp::Set, Vec::new(), 19i64.to_le_bytes().to_vec())], "fired_until: the last firing's timestamp");
}

#[test]
fn sliding_windows_take_a_record_in_each_window_holding_it() {
    let mut w = window(r#"{"key_json_field": "user", "size_ms": 10, "slide_ms": 5}"#);
    add(&mut w, "", r#"{"user": "a"}"#, 7).unwrap();
    add(&mut w, "", r#"{"user": "a"}"#, 12).unwrap();
    assert_eq!(w.pending_timers(b"user"), [(TimeDomain::EventTime, 9), (TimeDomain::EventTime, 14), (TimeDomain::EventTime, 19)]);
    let windows = w.map_cell("windows").unwrap();
    let entries = w.with_key(b"user", || windows.entries().unwrap()).unwrap();
    let entry = |start: i64| [&start.to_be_bytes()[..], b"a"].concat();
    assert_eq!(entries, [(entry(0), 1i64.to_le_bytes().to_vec()), (entry(5), 2i64.to_le_bytes().to_vec()), (entry(10), 1i64.to_le_bytes().to_vec())]);
    assert_eq!(
        texts(&w.watermark(20).unwrap()),
        [
            r#"{"key":"a","window_start":0,"window_end":10,"count":1}"#,
            r#"{"key":"a","window_start":5,"window_end":15,"count":2}"#,
            r#"{"key":"a","window_start":10,"window_end":20,"count":1}"#,
        ]
    );
}

#[test]
fn sum_min_and_max_aggregate_an_integer_field_named_last_in_the_output() {
    for (aggregate, value) in [("sum", "11"), ("min", "-2"), ("max", "10"), ("count", "3")] {
        let mut w = window(&format!(r#"{{"key_header": "k", "size_ms": 10, "aggregate": "{aggregate}", "field": "v"}}"#));
        for v in [3, -2, 10] {
            add(&mut w, "a", &format!(r#"{{"v": {v}}}"#), 4).unwrap();
        }
        assert_eq!(texts(&w.watermark(9).unwrap()), [format!(r#"{{"key":"a","window_start":0,"window_end":10,"{aggregate}":{value}}}"#)]);
    }
}

#[test]
fn allowed_lateness_delays_the_firing_and_a_record_whose_windows_all_fired_is_emitted_late() {
    let mut w = window(r#"{"key_header": "k", "size_ms": 10, "allowed_lateness_ms": 5}"#);
    add(&mut w, "a", "{}", 3).unwrap();
    assert_eq!(w.pending_timers(b"user"), [(TimeDomain::EventTime, 14)]);
    assert!(w.watermark(12).unwrap().is_empty());
    add(&mut w, "a", "{}", 4).unwrap();
    assert_eq!(texts(&w.watermark(14).unwrap()), [r#"{"key":"a","window_start":0,"window_end":10,"count":2}"#]);

    let late = add(&mut w, "a", r#"{"x":1}"#, 9).unwrap();
    assert_eq!(texts(&late), [r#"{"x":1}"#]);
    assert_eq!((late[0].timestamp, late[0].headers.get("late").map(String::as_str), late[0].headers.get("k").map(String::as_str)), (9, Some("w"), Some("a")));
    assert!(w.pending_timers(b"user").is_empty(), "a late record sets no timer");
    assert!(add(&mut w, "b", "{}", 10).unwrap().is_empty(), "a later window of the key is open");

    // fired_until comes back with the key's cells: a new harness given them knows what fired.
    let writes = w.checkpoint_cells().unwrap();
    let mut restored = window(r#"{"key_header": "k", "size_ms": 10, "allowed_lateness_ms": 5}"#);
    restored.restore_cells(&writes).unwrap();
    assert_eq!(add(&mut restored, "c", "{}", 0).unwrap()[0].headers.get("late").map(String::as_str), Some("w"));
}

#[test]
fn a_sliding_record_adds_only_to_its_windows_that_have_not_fired() {
    let mut w = window(r#"{"key_header": "k", "size_ms": 10, "slide_ms": 5}"#);
    add(&mut w, "a", "{}", 2).unwrap();
    assert_eq!(
        texts(&w.watermark(9).unwrap()),
        [r#"{"key":"a","window_start":-5,"window_end":5,"count":1}"#, r#"{"key":"a","window_start":0,"window_end":10,"count":1}"#]
    );
    assert!(add(&mut w, "a", "{}", 7).unwrap().is_empty(), "[5, 15) has not fired");
    assert_eq!(texts(&w.watermark(14).unwrap()), [r#"{"key":"a","window_start":5,"window_end":15,"count":1}"#], "[0, 10) did not take it again");
}

#[test]
fn a_record_without_the_key_or_an_integer_field_or_whose_sum_overflows_fails() {
    let failure = |config: &str, records: &[(&str, &str)]| {
        let mut w = window(config);
        let mut results: Vec<_> = records.iter().map(|(key, payload)| add(&mut w, key, payload, 1)).collect();
        results.pop().unwrap().unwrap_err()
    };
    let sum = r#"{"key_json_field": "k", "size_ms": 10, "aggregate": "sum", "field": "v"}"#;
    assert!(failure(r#"{"key_json_field": "k", "size_ms": 10}"#, &[("", "{}")]).ends_with("the record has no key to window by"));
    assert!(failure(sum, &[("", r#"{"k": "a"}"#)]).ends_with("the record has no field 'v' to sum"));
    assert!(failure(sum, &[("", r#"{"k": "a", "v": 1.5}"#)]).ends_with("field 'v' is 1.5, not an integer that fits 64 bits"));
    assert!(failure(sum, &[("", r#"{"k": "a", "v": "1"}"#)]).ends_with(r#"field 'v' is "1", not an integer that fits 64 bits"#));
    assert!(failure(sum, &[("", r#"{"k": "a", "v": 9223372036854775808}"#)]).ends_with("field 'v' is 9223372036854775808, not an integer that fits 64 bits"));
    let overflow = failure(sum, &[("", r#"{"k": "a", "v": 9223372036854775807}"#), ("", r#"{"k": "a", "v": 1}"#)]);
    assert!(overflow.ends_with("the sum of key 'a' in the window starting at 0 overflows an i64"), "{overflow}");
    assert!(overflow.starts_with("step 'w' (window) failed: "), "{overflow}");
}

#[test]
fn a_config_error_names_the_field() {
    let refused = |config: &str| StepHarness::named("w", "window", config).err().expect("refused");
    assert_eq!(refused(r#"{"size_ms": 10}"#), "step 'w': config needs key_header or key_json_field");
    assert_eq!(refused(r#"{"key_header": "k"}"#), "step 'w': config size_ms must be a whole number >= 1, not null");
    assert_eq!(refused(r#"{"key_header": "k", "size_ms": 0}"#), "step 'w': config size_ms must be a whole number >= 1, not 0");
    assert_eq!(refused(r#"{"key_header": "k", "size_ms": 10, "slide_ms": 11}"#), "step 'w': config slide_ms must be at most size_ms (10), not 11");
    assert_eq!(refused(r#"{"key_header": "k", "size_ms": 10, "slide_ms": 0}"#), "step 'w': config slide_ms must be a whole number >= 1, not 0");
    assert_eq!(refused(r#"{"key_header": "k", "size_ms": 10, "allowed_lateness_ms": -1}"#), "step 'w': config allowed_lateness_ms must be a whole number >= 0, not -1");
    assert_eq!(refused(r#"{"key_header": "k", "size_ms": 10, "aggregate": "avg"}"#), r#"step 'w': config aggregate must be one of count, sum, min, max, not "avg""#);
    assert_eq!(refused(r#"{"key_header": "k", "size_ms": 10, "aggregate": "max"}"#), "step 'w': config field is required for aggregate max");
}

#[test]
fn a_window_declares_its_cells_and_timers_and_refuses_a_session_that_is_not_keyed() {
    let spec = || vec![StepSpec { name: "w".into(), step_type: "window".into(), config_json: r#"{"key_header": "k", "size_ms": 10}"#.into(), dead_letter: false }];
    let session = Session::open("s".into(), spec(), true).unwrap();
    assert!(session.has_timers());
    let cells: Vec<_> = session.cell_declarations().into_iter().map(|d| (d.name, d.kind)).collect();
    assert_eq!(cells, [("windows".to_string(), crate::cells::CellKind::Map), ("fired_until".to_string(), crate::cells::CellKind::Value)]);
    assert!(matches!(Session::open("s".into(), spec(), false), Err(Refused::CellsWithoutKey(_))));
}
