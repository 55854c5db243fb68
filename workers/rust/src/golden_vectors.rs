//! The Rust worker's built-in steps give what the golden vectors say (proto/conventions,
//! builtin-steps.golden.json; the format is in docs/steps.md, "Golden vectors"), each step built as
//! a session builds it and fed through the session's own logic by `StepHarness` (harness.rs): one instance per
//! key group, on the clock the bridge stamps.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde_json::Value;

use crate::harness::StepHarness;
use crate::record::Record;
use crate::session::KeyGroup;
use crate::step::write_bytes;
use crate::steps;

const WORKER: &str = "rust";
const VECTORS_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto/conventions/src/main/resources/org/flinkbridge/protocol/builtin-steps.golden.json");
const BUILT_IN: [&str; 6] = ["append_field", "batch", "filter", "count", "running_count", "window"];


fn load_vectors() -> Vec<Value> {
    let text = std::fs::read_to_string(VECTORS_PATH).unwrap_or_else(|e| panic!("cannot read {VECTORS_PATH}: {e}"));
    let file: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{VECTORS_PATH} is not JSON: {e}"));
    file["vectors"].as_array().expect("the file's vectors").clone()
}

fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_else(|| panic!("no string {field} in {value}")).to_string()
}

fn payload(record: &Value) -> Vec<u8> {
    match record.get("text") {
        Some(text) => text.as_str().expect("text is a string").as_bytes().to_vec(),
        None => base64(&text(record, "base64")),
    }
}

fn record(value: &Value, timestamp: i64) -> Record {
    let headers = value.get("headers").and_then(Value::as_object).map_or_else(IndexMap::new, |headers| {
        headers.iter().map(|(k, v)| (k.clone(), v.as_str().expect("a header value is a string").to_string())).collect()
    });
    Record { payload: payload(value), headers, timestamp }
}

fn key_group(value: &Value) -> KeyGroup {
    value.get("key_group").map(|group| group.as_u64().expect("a key group is a whole number") as u32)
}

/// Step states by key group.
fn states(entries: &Value) -> BTreeMap<KeyGroup, Vec<u8>> {
    entries.as_array().expect("a list of states").iter().map(|entry| (key_group(entry), hex(&text(entry, "state_hex")))).collect()
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).expect("hex digits")).collect()
}

fn base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextets: Vec<u32> =
        text.bytes().filter(|&b| b != b'=').map(|b| ALPHABET.iter().position(|&a| a == b).expect("base64") as u32).collect();
    let mut bytes = Vec::new();
    for chunk in sextets.chunks(4) {
        let bits = chunk.iter().enumerate().fold(0u32, |bits, (i, s)| bits | s << (18 - 6 * i));
        bytes.extend_from_slice(&bits.to_be_bytes()[1..chunk.len()]);
    }
    bytes
}

/// None when an error (or none) came as expected: `actual` contains `expected`, or both are None.
fn error_mismatch(what: &str, expected: Option<&str>, actual: Option<String>) -> Option<String> {
    match (expected, actual) {
        (None, None) => None,
        (None, Some(actual)) => Some(format!("{what} failed: {actual}")),
        (Some(expected), Some(actual)) if actual.contains(expected) => None,
        (Some(expected), actual) => Some(format!("{what} gave {actual:?}, expected an error containing '{expected}'")),
    }
}

fn describe(records: &[Record]) -> String {
    let described: Vec<String> = records
        .iter()
        .map(|r| format!("{{payload {:?}, headers {:?}, timestamp {}}}", String::from_utf8_lossy(&r.payload), r.headers.iter().collect::<BTreeMap<_, _>>(), r.timestamp))
        .collect();
    format!("[{}]", described.join(", "))
}

fn describe_states(states: &BTreeMap<KeyGroup, Vec<u8>>) -> String {
    let described: Vec<String> =
        states.iter().map(|(group, state)| format!("{group:?}: {}", state.iter().map(|b| format!("{b:02x}")).collect::<String>())).collect();
    format!("{{{}}}", described.join(", "))
}

/// None when `result` and `outputs` are what `event` says (its outputs, or its error), else what differs.
fn outputs_mismatch(event: &Value, result: Result<Vec<Record>, String>) -> Option<String> {
    if let Some(expected) = event.get("error") {
        return error_mismatch("the input", expected.as_str(), result.err());
    }
    let outputs = match result {
        Ok(outputs) => outputs,
        Err(e) => return Some(format!("failed with '{e}'")),
    };
    let expected: Vec<Record> =
        event["outputs"].as_array().expect("outputs").iter().map(|o| record(o, o["timestamp"].as_i64().expect("a timestamp"))).collect();
    (outputs != expected).then(|| format!("gave {}, expected {}", describe(&outputs), describe(&expected)))
}

/// The step's own state of each instance, in the segment's encoding a session's checkpoint holds it in: the int32
/// 1 (one step), the state's int32 length and the state.
fn segment_states(states: BTreeMap<KeyGroup, Vec<u8>>) -> BTreeMap<KeyGroup, Vec<u8>> {
    states
        .into_iter()
        .map(|(group, state)| {
            let mut segment = 1i32.to_be_bytes().to_vec();
            write_bytes(&mut segment, &state);
            (group, segment)
        })
        .collect()
}

fn harness(step: &Value) -> Result<StepHarness, String> {
    StepHarness::named(&text(step, "name"), &text(step, "type"), &text(step, "config"))
}

/// Plays one event (not a restore) on the harness: None when it gives what the event says.
fn apply(harness: &mut StepHarness, event: &Value) -> Option<String> {
    if let Some(millis) = event.get("clock") {
        harness.set_processing_time(millis.as_i64().expect("a clock value")).expect("a clock");
        return None;
    }
    if let Some(input) = event.get("record") {
        let record = record(input, input.get("timestamp").and_then(Value::as_i64).unwrap_or(0));
        return outputs_mismatch(event, harness.process(key_group(input), record));
    }
    if let Some(timestamp) = event.get("watermark") {
        return outputs_mismatch(event, harness.watermark(timestamp.as_i64().expect("a watermark")));
    }
    if let Some(expected) = event.get("checkpoint") {
        let expected = segment_states(states(expected));
        return match harness.checkpoint() {
            Ok(actual) if actual == expected => None,
            Ok(actual) => Some(format!("the checkpoint holds {}, expected {}", describe_states(&actual), describe_states(&expected))),
            Err(e) => Some(format!("the snapshot failed: {e}")),
        };
    }
    panic!("an event that is none of clock, record, watermark, checkpoint, restore: {event}")
}

/// None when this worker gives what the vector says, else the first difference.
fn mismatch(vector: &Value) -> Option<String> {
    let step = &vector["step"];
    if let Some(expected) = vector.get("open_error") {
        return error_mismatch("opening the step", expected.as_str(), harness(step).err());
    }
    let mut session = match harness(step) {
        Ok(session) => session,
        Err(e) => return Some(format!("opening the step failed: {e}")),
    };
    for (index, event) in vector["events"].as_array().expect("events").iter().enumerate() {
        let found = if let Some(restored) = event.get("restore") {
            // A new session, its instances given these states before any input.
            session = harness(step).expect("the step opened before");
            error_mismatch("the restore", event.get("error").and_then(Value::as_str), session.restore(segment_states(states(restored))).err())
        } else {
            apply(&mut session, event)
        };
        if let Some(found) = found {
            return Some(format!("event {index}: {found}"));
        }
    }
    None
}

#[test]
fn every_vector() {
    let mut failures = Vec::new();
    let vectors = load_vectors();
    for vector in &vectors {
        let name = text(vector, "name");
        let drifts = vector.get("known_drift").and_then(|drift| drift.get(WORKER)).is_some();
        match (mismatch(vector), drifts) {
            (Some(found), false) => failures.push(format!("{name}: {found}")),
            (None, true) => failures.push(format!("{name}: the known drift is gone: remove the vector's known_drift.{WORKER}")),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{} of {} golden vectors fail:\n{}", failures.len(), vectors.len(), failures.join("\n"));
}

#[test]
fn every_built_in_step_has_vectors() {
    let covered: BTreeSet<String> = load_vectors().iter().map(|vector| text(&vector["step"], "type")).collect();
    assert_eq!(BUILT_IN.iter().map(|t| t.to_string()).collect::<BTreeSet<_>>(), covered);
    assert!(BUILT_IN.iter().all(|t| steps::is_native(t)));
}
