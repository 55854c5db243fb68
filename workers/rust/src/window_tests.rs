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
    assert_eq!(refused(r#"{"key_header": "k", "size_ms": 10, "aggregate": "avg"}"#), r#"step 'w': config aggregate must be one of count, sum, min, max or a user class (a name with a dot), not "avg""#);
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

/// The user aggregates of the Python worker's tests (workers/python/tests/aggregates.py, on the runtime's path), the
/// same as the Java worker's TestAggregates: the same records give the same outputs and accumulators here.
const AVERAGE: &str = "tests.aggregates.Average";
const TRACE: &str = "tests.aggregates.Trace";
const FAILING: &str = "tests.aggregates.Failing";

fn user_window(aggregate: &str, more: &str) -> StepHarness {
    crate::python::tests::start_runtime();
    window(&format!(r#"{{"key_header": "k", "size_ms": 10{more}, "aggregate": "{aggregate}"}}"#))
}

/// A user aggregate's output: the result's JSON in the field result.
fn result(key: &str, start: i64, end: i64, result_json: &str) -> String {
    format!(r#"{{"key":"{key}","window_start":{start},"window_end":{end},"result":{result_json}}}"#)
}

/// An Average accumulator: the sum and the count, each an i64 big-endian.
fn sums(sum: i64, count: i64) -> Vec<u8> {
    [sum.to_be_bytes(), count.to_be_bytes()].concat()
}

/// A pane's entry: its start (big-endian) then K, and the accumulator.
fn pane(start: i64, key: &str, accumulator: impl AsRef<[u8]>) -> (Vec<u8>, Vec<u8>) {
    ([&start.to_be_bytes()[..], key.as_bytes()].concat(), accumulator.as_ref().to_vec())
}

/// The entries of the map cell windows of the (Flink) key "user".
fn panes(w: &mut StepHarness) -> Vec<(Vec<u8>, Vec<u8>)> {
    let windows = w.map_cell("windows").unwrap();
    w.with_key(b"user", || windows.entries().unwrap()).unwrap()
}

fn v(w: &mut StepHarness, key: &str, timestamp: i64, v: i64) -> Result<Vec<Record>, String> {
    add(w, key, &format!(r#"{{"v": {v}}}"#), timestamp)
}

#[test]
fn a_user_aggregate_over_tumbling_windows_keeps_one_accumulator_per_window_and_never_merges() {
    for aggregate in [AVERAGE, TRACE] {
        let average = aggregate == AVERAGE;
        let (acc, out) = (|s: i64, c: i64, t: &str| if average { sums(s, c) } else { t.as_bytes().to_vec() }, |a: &str, t: &str| if average { a.to_string() } else { format!(r#"{{"trace":"{t}"}}"#) });
        let mut w = user_window(aggregate, "");
        for (key, timestamp, value) in [("a", 1, 2), ("b", 5, 1), ("a", 3, 4), ("a", 12, 3)] {
            assert!(v(&mut w, key, timestamp, value).unwrap().is_empty());
        }
        assert_eq!(w.pending_timers(b"user"), [(TimeDomain::EventTime, 9), (TimeDomain::EventTime, 19)]);
        assert_eq!(panes(&mut w), [pane(0, "a", acc(6, 2, "2,4")), pane(0, "b", acc(1, 1, "1")), pane(10, "a", acc(3, 1, "3"))]);
        let fired = w.watermark(9).unwrap();
        assert_eq!(texts(&fired), [result("a", 0, 10, &out("3.0", "2,4")), result("b", 0, 10, &out("1.0", "1"))]);
        assert_eq!((fired[0].timestamp, fired[0].headers.get("key").map(String::as_str)), (9, Some("a")));
        assert_eq!(panes(&mut w), [pane(10, "a", acc(3, 1, "3"))]);
        assert_eq!(texts(&w.end_input().unwrap()), [result("a", 10, 20, &out("3.0", "3"))]);
        assert!(panes(&mut w).is_empty());
    }
}

#[test]
fn a_user_aggregate_over_sliding_windows_merges_its_panes_and_drops_a_pane_after_its_last_window() {
    for aggregate in [AVERAGE, TRACE] {
        let average = aggregate == AVERAGE;
        let (acc, out) = (|s: i64, c: i64, t: &str| if average { sums(s, c) } else { t.as_bytes().to_vec() }, |a: &str, t: &str| if average { a.to_string() } else { format!(r#"{{"trace":"{t}"}}"#) });
        let mut w = user_window(aggregate, r#", "slide_ms": 5"#);
        v(&mut w, "a", 1, 1).unwrap(); // pane 0: [-5, 5) and [0, 10)
        v(&mut w, "a", 7, 2).unwrap(); // pane 5: [0, 10) and [5, 15)
        v(&mut w, "a", 8, 3).unwrap(); // pane 5
        v(&mut w, "a", 12, 7).unwrap(); // pane 10: [5, 15) and [10, 20)
        assert_eq!(w.pending_timers(b"user").iter().map(|t| t.1).collect::<Vec<_>>(), [4, 9, 14, 19]);
        assert_eq!(panes(&mut w), [pane(0, "a", acc(1, 1, "1")), pane(5, "a", acc(5, 2, "2,3")), pane(10, "a", acc(7, 1, "7"))]);
        assert_eq!(texts(&w.watermark(4).unwrap()), [result("a", -5, 5, &out("1.0", "1"))]);
        assert_eq!(panes(&mut w).len(), 3, "pane 0 is in [0, 10) too");
        assert_eq!(texts(&w.watermark(9).unwrap()), [result("a", 0, 10, &out("2.0", "[1|2,3]"))]);
        assert_eq!(panes(&mut w), [pane(5, "a", acc(5, 2, "2,3")), pane(10, "a", acc(7, 1, "7"))]);
        assert_eq!(texts(&w.watermark(14).unwrap()), [result("a", 5, 15, &out("4.0", "[2,3|7]"))]);
        assert_eq!(panes(&mut w), [pane(10, "a", acc(7, 1, "7"))]);
        assert_eq!(texts(&w.end_input().unwrap()), [result("a", 10, 20, &out("7.0", "7"))]);
        assert!(panes(&mut w).is_empty());
    }
}

#[test]
fn a_pane_is_the_greatest_common_divisor_of_size_and_slide() {
    let mut w = user_window(TRACE, r#", "slide_ms": 4"#);
    for timestamp in [0, 3, 6, 9] {
        v(&mut w, "a", timestamp, timestamp).unwrap(); // panes 0, 2, 6, 8
    }
    assert_eq!(panes(&mut w), [pane(0, "a", "0"), pane(2, "a", "3"), pane(6, "a", "6"), pane(8, "a", "9")]);
    let trace = |t: &str| format!(r#"{{"trace":"{t}"}}"#);
    assert_eq!(texts(&w.watermark(9).unwrap()), [result("a", -8, 2, &trace("0")), result("a", -4, 6, &trace("[0|3]")), result("a", 0, 10, &trace("[[[0|3]|6]|9]"))]);
    // Panes 0 and 2 were in no later window than [0, 10); 6 is in [4, 14) too, 8 in [4, 14) and [8, 18).
    assert_eq!(panes(&mut w), [pane(6, "a", "6"), pane(8, "a", "9")]);
    assert_eq!(texts(&w.end_input().unwrap()), [result("a", 4, 14, &trace("[6|9]")), result("a", 8, 18, &trace("9"))]);
}

#[test]
fn a_user_aggregates_accumulators_come_back_with_the_keys_cells() {
    let mut w = user_window(TRACE, r#", "slide_ms": 5"#);
    v(&mut w, "a", 1, 1).unwrap();
    v(&mut w, "a", 6, 2).unwrap();
    assert_eq!(texts(&w.watermark(4).unwrap()), [result("a", -5, 5, r#"{"trace":"1"}"#)]);
    let writes = w.checkpoint_cells().unwrap();

    let mut restored = user_window(TRACE, r#", "slide_ms": 5"#);
    restored.restore_cells(&writes).unwrap();
    assert_eq!(panes(&mut restored), [pane(0, "a", "1"), pane(5, "a", "2")]);
    v(&mut restored, "a", 8, 3).unwrap(); // sets the timers of [0, 10) and [5, 15) again
    assert_eq!(texts(&restored.watermark(9).unwrap()), [result("a", 0, 10, r#"{"trace":"[1|2,3]"}"#)]);
    assert_eq!(texts(&restored.end_input().unwrap()), [result("a", 5, 15, r#"{"trace":"2,3"}"#)]);
}

#[test]
fn a_record_whose_windows_all_fired_is_late_with_a_user_aggregate_too() {
    let mut w = user_window(AVERAGE, r#", "slide_ms": 5, "allowed_lateness_ms": 5"#);
    v(&mut w, "a", 3, 4).unwrap(); // [-5, 5) fires at 9, [0, 10) at 14
    assert_eq!(texts(&w.watermark(9).unwrap()), [result("a", -5, 5, "4.0")]);
    assert!(v(&mut w, "a", 4, 2).unwrap().is_empty(), "[0, 10) is open");
    assert_eq!(texts(&w.watermark(14).unwrap()), [result("a", 0, 10, "3.0")]);
    assert!(panes(&mut w).is_empty());
    let late = v(&mut w, "a", 2, 8).unwrap();
    assert_eq!(texts(&late), [r#"{"v": 8}"#]);
    assert_eq!((late[0].timestamp, late[0].headers.get("late").map(String::as_str)), (2, Some("w")));
    assert!(panes(&mut w).is_empty(), "a late record is added to no pane");
    assert!(w.pending_timers(b"user").is_empty());
}

#[test]
fn a_user_aggregates_failure_fails_the_record_or_the_firing_naming_the_step_and_the_class() {
    let named = format!("step 'w' (window) failed: step 'w': aggregate {FAILING}");
    let mut w = user_window(FAILING, "");
    assert_eq!(v(&mut w, "a", 1, 13).unwrap_err(), format!("{named} failed in add(): RuntimeError: told to fail on 13"));

    let mut w = user_window(FAILING, r#", "slide_ms": 5"#);
    v(&mut w, "a", 1, 1).unwrap();
    v(&mut w, "a", 6, 2).unwrap();
    assert_eq!(w.watermark(9).unwrap_err(), format!("{named} failed in merge(): RuntimeError: told not to merge"));

    let mut w = user_window(FAILING, "");
    v(&mut w, "a", 1, 99).unwrap();
    assert_eq!(w.watermark(9).unwrap_err(), format!("{named} failed in result(): RuntimeError: told to fail on 99"));

    let mut w = user_window(FAILING, "");
    v(&mut w, "a", 1, 0).unwrap();
    assert_eq!(w.watermark(9).unwrap_err(), format!("{named}: result() returned a object, which cannot be written as JSON: Object of type object is not JSON serializable"));

    let mut w = user_window("tests.aggregates.Forgetful", "");
    assert_eq!(v(&mut w, "a", 1, 1).unwrap_err(), "step 'w' (window) failed: step 'w': aggregate tests.aggregates.Forgetful: add() returned None, not an accumulator (bytes)");
}

#[test]
fn a_user_aggregates_config_errors_name_the_step_and_the_class() {
    crate::python::tests::start_runtime();
    let refused = |aggregate: &str, more: &str| {
        StepHarness::named("w", "window", &format!(r#"{{"key_header": "k", "size_ms": 10, "aggregate": "{aggregate}"{more}}}"#)).err().expect("refused")
    };
    assert!(refused("no_such_module.Aggregate", "").starts_with("step 'w': cannot import module no_such_module (is it on the worker's PYTHONPATH or --path?): ModuleNotFoundError"));
    assert_eq!(refused("tests.aggregates.Missing", ""), "step 'w': aggregate tests.aggregates.Missing: module tests.aggregates has no class Missing");
    assert_eq!(refused(AVERAGE, r#", "field": "v""#), format!("step 'w': config field is not used with a user aggregate ({AVERAGE}), whose add() is given the whole record"));
    assert_eq!(refused("tests.aggregates.NoMerge", ""), "step 'w': aggregate tests.aggregates.NoMerge has no method merge: a window aggregate has add(accumulator, record), merge(a, b) and result(accumulator)");
    // A worker without --python-runtime refuses the session, naming the step and the class.
    let without = crate::python::tests::without_runtime(|| refused(AVERAGE, ""));
    assert_eq!(without, format!("step 'w': aggregate {AVERAGE} is a Python class, which this worker hosts only when started with --python-runtime DIR"));
}
