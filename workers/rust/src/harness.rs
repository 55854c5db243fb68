//! Runs a step as a worker session runs it, for tests without Flink or a bridge (docs/rust-worker.md, "Testing a
//! step"), as the Java SDK's StepHarness and the Python worker's `flink_bridge.testing.StepHarness` do. It is the
//! session's own logic (session.rs) with one step: built by its type and config JSON as `OpenSession` builds it,
//! one instance per key group, a watermark to every instance in key group order, processing time what
//! `set_processing_time` stamped (a CLOCK input), and checkpoints as SnapshotState gives them. An input that fails
//! returns the step's error, and every later input is refused, as in a session.
//!
//! A step with cells: the harness's session is keyed, and it plays the bridge's part with the cells. It keeps
//! what Flink's keyed state would hold (each key's cells, as the writes of `checkpoint_cells` or `restore_cells`
//! left them) and LOADs a key's cells from it before the first record of that key (`process_keyed`); a
//! `checkpoint_cells` is a BARRIER, and returns the cell writes it was answered with.
//!
//! A step that keeps cells only in a keyed session (the built-in running_count, batch and count) runs as the first input that tells
//! the two apart says: with cells when records come with their keys (`process_keyed`, or any use of the cells), as
//! in a session that is not keyed when a record comes without its key (`process`) or whole-instance state is
//! restored first (`restore`). Mixing the two afterwards is an error.
//!
//! A step with timers: the harness plays the bridge's part with them too. It keeps each key's pending timers as
//! Flink's timer service would (what the TIMERS answers of its inputs set and deleted) and fires them as TIMER inputs
//! (the key's cells loaded first when not resident): the event-time ones a `watermark` reaches, in timestamp order,
//! before the watermark itself (one a firing sets at or before it fires too), the processing-time ones once
//! `set_processing_time` reaches them, after its CLOCK. `pending_timers` reads a key's.

use std::collections::BTreeMap;

use crate::cells::{Key, MapCell, ValueCell};
use crate::proto::{CellContent, CellEntry, CellOp, KeyCells, TimerChanges, TimerFiring, TimerOp};
use crate::record::Record;
use crate::session::{Failure, Input, KeyGroup, Session, StepSpec};
use crate::step::TimeDomain;
use crate::steps::MAX_WATERMARK;

pub struct StepHarness {
    spec: StepSpec,
    session: Session,
    /// Whether the stream is settled as keyed or not (see the module's doc); until then the session is keyed.
    settled: bool,
    /// The last processing time stamped, for a session opened again when the stream is settled as not keyed.
    clock: Option<i64>,
    /// The cells as Flink's keyed state would hold them, by key and cell id.
    backend: BTreeMap<Key, BTreeMap<u32, Stored>>,
    /// The sequence number of the next input, for LOADs and the record after them.
    sequence: u64,
    /// The pending timers as Flink's timer service would hold them, in firing order within a domain: (domain,
    /// timestamp, key, step) to the key group of the input that set it (its firing goes to that instance).
    timers: BTreeMap<(TimeDomain, i64, Key, u32), KeyGroup>,
}

/// One cell of one key in the harness's keyed state.
enum Stored {
    Value(Vec<u8>),
    Map(BTreeMap<Vec<u8>, Vec<u8>>),
}

/// The session's name: its errors are written `<name>: <error>`, and the harness gives the error alone.
const NAME: &str = "harness";

impl StepHarness {
    /// A step of `step_type` (a built-in step's name, or a native step's type, e.g. `flink_bridge_worker::Echo`)
    /// named after its type; an error (naming the step and what is wrong) where a session would be refused.
    pub fn new(step_type: &str, config_json: &str) -> Result<StepHarness, String> {
        StepHarness::named(step_type, step_type, config_json)
    }

    /// A step with a name of its own (what its errors name).
    pub fn named(step_name: &str, step_type: &str, config_json: &str) -> Result<StepHarness, String> {
        let spec = StepSpec { name: step_name.into(), step_type: step_type.into(), config_json: config_json.into(), dead_letter: false };
        let session = Session::open(NAME.into(), vec![spec.clone()], true).map_err(|e| e.to_string())?;
        Ok(StepHarness { spec, session, settled: false, clock: None, backend: BTreeMap::new(), sequence: 0, timers: BTreeMap::new() })
    }

    /// A record without its key or whole-instance state, before the stream is settled: a step that keeps cells only
    /// in a keyed session runs as in a session that is not keyed (one that keeps them in any stays keyed, and a
    /// record without its key fails there).
    fn settle_unkeyed(&mut self) {
        if std::mem::replace(&mut self.settled, true) || self.session.cell_declarations().is_empty() {
            return;
        }
        if let Ok(mut unkeyed) = Session::open(NAME.into(), vec![self.spec.clone()], false) {
            if let Some(millis) = self.clock {
                unkeyed.serve(Input::Clock(millis), &mut Vec::new()).ok();
            }
            self.session = unkeyed;
        }
    }

    /// A record with its key or a use of the cells: the stream is keyed, unless it was settled as not keyed.
    fn settle_keyed(&mut self) -> Result<(), String> {
        self.settled = true;
        if self.session.keyed() {
            return Ok(());
        }
        Err(format!(
            "the harness runs step '{}' as in a session that is not keyed (a record came without its key, or whole-instance state was restored, first), where it keeps no cells: give every record its key (process_keyed) to run it with cells",
            self.spec.name
        ))
    }

    /// Hands each key group its state (what `checkpoint` gave), as RestoreState does: before any input.
    pub fn restore(&mut self, states: BTreeMap<KeyGroup, Vec<u8>>) -> Result<(), String> {
        if states.values().any(|state| !state.is_empty()) {
            self.settle_unkeyed();
        }
        self.session.restore(states)
    }

    /// A record, to the instance of its Flink key group (0 to 32767; None: a stream that is not keyed): its outputs.
    /// A step with cells needs the record's key: `process_keyed`.
    pub fn process(&mut self, key_group: KeyGroup, record: Record) -> Result<Vec<Record>, String> {
        self.settle_unkeyed();
        self.serve(Input::Record(key_group, None, record))
    }

    /// A record with its key (the bytes the pipeline's key extracts), its cells loaded first when the key is not
    /// resident, as the bridge does: its outputs.
    pub fn process_keyed(&mut self, key_group: KeyGroup, key: &[u8], record: Record) -> Result<Vec<Record>, String> {
        self.settle_keyed()?;
        self.load(key)?;
        let outputs = self.serve(Input::Record(key_group, Some(key.to_vec()), record))?;
        self.take_timer_changes(key_group, key)?;
        Ok(outputs)
    }

    /// The timers pending for `key`, as (domain, timestamp), event time first, each in timestamp order.
    pub fn pending_timers(&self, key: &[u8]) -> Vec<(TimeDomain, i64)> {
        self.timers.keys().filter(|(_, _, k, _)| k == key).map(|(domain, timestamp, _, _)| (*domain, *timestamp)).collect()
    }

    /// The timers the input just served set or deleted for `key`, applied as the bridge applies a TIMERS answer.
    fn take_timer_changes(&mut self, key_group: KeyGroup, key: &[u8]) -> Result<(), String> {
        let Some(TimerChanges { changes }) = self.session.timer_changes() else { return Ok(()) };
        for change in changes {
            let domain = TimeDomain::from_proto(change.domain).ok_or_else(|| format!("a timer change of domain {}", change.domain))?;
            let timer = (domain, change.timestamp, key.to_vec(), change.step);
            match TimerOp::from_i32(change.op) {
                Some(TimerOp::Set) => drop(self.timers.insert(timer, key_group)),
                Some(TimerOp::Delete) => drop(self.timers.remove(&timer)),
                _ => return Err(format!("a timer change of op {}", change.op)),
            }
        }
        Ok(())
    }

    /// Fires the pending timers of `domain` at or before `until`, in timestamp order (then key), as TIMER inputs: the
    /// outputs of all. A timer a firing sets at or before `until` fires too.
    fn fire_until(&mut self, domain: TimeDomain, until: i64) -> Result<Vec<Record>, String> {
        let mut outputs = Vec::new();
        loop {
            let first = self.timers.range((domain, i64::MIN, Vec::new(), 0)..).next();
            let Some(((_, timestamp, key, step), key_group)) = first.filter(|((d, t, _, _), _)| *d == domain && *t <= until).map(|(k, v)| (k.clone(), *v)) else { break };
            self.timers.remove(&(domain, timestamp, key.clone(), step));
            self.load(&key)?;
            let firing = TimerFiring { timestamp, step, domain: domain.to_proto() as i32 };
            outputs.extend(self.serve(Input::Timer(key_group, key.clone(), firing))?);
            self.take_timer_changes(key_group, &key)?;
        }
        Ok(outputs)
    }

    /// A checkpoint's barrier: the cells changed since the last (one KeyCells per key, writes in the order to apply
    /// them, as CELL_WRITES carry them), which the harness's keyed state takes too; the cells are clean after.
    pub fn checkpoint_cells(&mut self) -> Result<Vec<KeyCells>, String> {
        self.settle_keyed()?;
        self.serve(Input::Barrier(Vec::new()))?;
        let writes = self.session.cell_writes(usize::MAX, usize::MAX).map_err(|failure| strip(failure_text(failure)))?;
        self.apply(&writes)?;
        Ok(writes)
    }

    /// Gives the harness's keyed state the cells these writes leave (what `checkpoint_cells` returned, from this
    /// harness or another): a key's are loaded before its next record, when it is not resident yet.
    pub fn restore_cells(&mut self, writes: &[KeyCells]) -> Result<(), String> {
        self.settle_keyed()?;
        self.apply(writes)
    }

    /// The step's value cell of this name, to read or write a key's value in `with_key`.
    pub fn value_cell(&mut self, name: &str) -> Result<ValueCell, String> {
        self.settle_keyed()?;
        self.session.cells().value_cell_named(name)
    }

    /// The step's map cell of this name, to read or write a key's entries in `with_key`.
    pub fn map_cell(&mut self, name: &str) -> Result<MapCell, String> {
        self.settle_keyed()?;
        self.session.cells().map_cell_named(name)
    }

    /// Runs `f` as if a record of `key` were being handled, at the current processing time: the cells' handles
    /// reach that key's cells (loaded first, when not resident). What `f` writes is in the next `checkpoint_cells`.
    pub fn with_key<R>(&mut self, key: &[u8], f: impl FnOnce() -> R) -> Result<R, String> {
        self.settle_keyed()?;
        self.load(key)?;
        self.session.with_key(key, f)
    }

    /// A LOAD of the key's cells from the harness's keyed state, when the step has cells and the key is not resident.
    fn load(&mut self, key: &[u8]) -> Result<(), String> {
        if self.session.cell_declarations().is_empty() || self.session.is_resident(key) {
            return Ok(());
        }
        let cells = self.backend.get(key).into_iter().flatten().map(|(&cell, stored)| match stored {
            Stored::Value(value) => CellContent { cell, value: Some(value.clone().into()), entries: Vec::new() },
            Stored::Map(entries) => CellContent {
                cell,
                value: None,
                entries: entries.iter().map(|(k, v)| CellEntry { key: k.clone().into(), value: v.clone().into() }).collect(),
            },
        });
        let loaded = KeyCells { key: key.to_vec().into(), cells: cells.collect(), writes: Vec::new(), resident_bytes: 0 };
        match self.session.serve(Input::Load(self.sequence, loaded), &mut Vec::new()) {
            Ok(()) => Ok(()),
            Err(failure) => Err(strip(failure_text(failure))),
        }
    }

    /// Applies cell writes to the harness's keyed state, as the bridge applies them to Flink's.
    fn apply(&mut self, writes: &[KeyCells]) -> Result<(), String> {
        for key_cells in writes {
            let cells = self.backend.entry(key_cells.key.to_vec()).or_default();
            for write in &key_cells.writes {
                match CellOp::from_i32(write.op) {
                    Some(CellOp::Set) => drop(cells.insert(write.cell, Stored::Value(write.value.to_vec()))),
                    Some(CellOp::Clear) => drop(cells.remove(&write.cell)),
                    Some(CellOp::Put) => drop(map_of(cells, write.cell)?.insert(write.entry_key.to_vec(), write.value.to_vec())),
                    Some(CellOp::Remove) => drop(map_of(cells, write.cell)?.remove(&write.entry_key[..])),
                    None => return Err(format!("a cell write of op {}", write.op)),
                }
            }
        }
        Ok(())
    }

    /// A watermark: first the event-time timers at or before it fire (see the module's doc), then it goes to every
    /// instance in key group order (not keyed first): the outputs of all.
    pub fn watermark(&mut self, timestamp: i64) -> Result<Vec<Record>, String> {
        let mut outputs = self.fire_until(TimeDomain::EventTime, timestamp)?;
        outputs.extend(self.serve(Input::Watermark(timestamp))?);
        Ok(outputs)
    }

    /// The end of input (a watermark of `i64::MAX`): whatever the step still held, every event-time timer fired.
    pub fn end_input(&mut self) -> Result<Vec<Record>, String> {
        self.watermark(MAX_WATERMARK)
    }

    /// Processing time (`StepContext::current_time_millis`) is `millis` from now on, as a CLOCK input stamps it;
    /// until the first, it is this process's clock. Then the processing-time timers it reached fire: their outputs.
    pub fn set_processing_time(&mut self, millis: i64) -> Result<Vec<Record>, String> {
        self.clock = Some(millis);
        self.session.serve(Input::Clock(millis), &mut Vec::new()).ok();
        self.fire_until(TimeDomain::ProcessingTime, millis)
    }

    /// Each instance's state by key group (None: not keyed), in the segment's encoding as SnapshotState gives it
    /// (the int32 1, the step state's int32 length, the step's state), empty ones left out.
    pub fn checkpoint(&self) -> Result<BTreeMap<KeyGroup, Vec<u8>>, String> {
        Ok(self.session.snapshot()?.into_iter().collect())
    }

    /// Later inputs are refused.
    pub fn close(&mut self) {
        self.settled = true;
        self.session.close();
    }

    fn serve(&mut self, input: Input) -> Result<Vec<Record>, String> {
        self.sequence += 1;
        let mut out = Vec::new();
        match self.session.serve(input, &mut out) {
            Ok(()) => Ok(out),
            Err(failure) => Err(strip(failure_text(failure))),
        }
    }
}

/// A map cell of the harness's keyed state, made when it holds nothing.
fn map_of(cells: &mut BTreeMap<u32, Stored>, cell: u32) -> Result<&mut BTreeMap<Vec<u8>, Vec<u8>>, String> {
    match cells.entry(cell).or_insert_with(|| Stored::Map(BTreeMap::new())) {
        Stored::Map(map) => Ok(map),
        Stored::Value(_) => Err(format!("cell {cell} is a value, and a write puts a map entry in it")),
    }
}

fn failure_text(failure: Failure) -> String {
    match failure {
        Failure::Session(text) => text,
        // The harness's step is not a dead-letter one.
        Failure::Input(failed) => failed.message,
    }
}

/// The error without the session's name.
fn strip(text: String) -> String {
    text.strip_prefix(NAME).and_then(|t| t.strip_prefix(": ")).map_or(text.clone(), str::to_string)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cells::tests::{ops, CELL_COUNTER_TYPE};
    use crate::step::TimeDomain;

    fn record(payload: &str, user: &str, timestamp: i64) -> Record {
        let mut r = Record { payload: payload.as_bytes().to_vec(), timestamp, ..Default::default() };
        r.headers.insert("user".into(), user.into());
        r
    }

    /// The outputs' payloads as text.
    pub(crate) fn texts(records: &[Record]) -> Vec<String> {
        records.iter().map(|r| String::from_utf8_lossy(&r.payload).into_owned()).collect()
    }

    #[test]
    fn counts_go_on_after_a_checkpoint_restored_into_a_new_harness() {
        let config = r#"{"key_header": "user"}"#;
        let mut count = StepHarness::new("running_count", config).unwrap();
        count.process(Some(7), record("{}", "a", 5)).unwrap();
        count.process(Some(9), record("{}", "b", 5)).unwrap();
        let checkpoint = count.checkpoint().unwrap();
        assert_eq!(checkpoint.keys().copied().collect::<Vec<_>>(), vec![Some(7), Some(9)]);
        // The segment's encoding: one step, then its state behind its length.
        assert_eq!(&checkpoint[&Some(7)][..4], &1i32.to_be_bytes());

        let mut count = StepHarness::new("running_count", config).unwrap();
        count.restore(checkpoint).unwrap();
        let next = count.process(Some(7), record("{}", "a", 6)).unwrap();
        assert_eq!(texts(&next), vec![r#"{"key":"a","count":2}"#]);
        assert_eq!(next[0].timestamp, 6);
        assert_eq!(texts(&count.process(Some(9), record("{}", "b", 6)).unwrap()), vec![r#"{"key":"b","count":2}"#]);
    }

    #[test]
    fn running_count_counts_in_its_cell_when_records_come_with_their_keys() {
        let config = r#"{"key_header": "user"}"#;
        let mut count = StepHarness::new("running_count", config).unwrap();
        let counts = count.map_cell("counts").unwrap();
        count.with_key(b"a", || counts.put(b"a", 5i64.to_le_bytes()).unwrap()).unwrap();
        assert_eq!(texts(&count.process_keyed(Some(7), b"a", record("{}", "a", 5)).unwrap()), [r#"{"key":"a","count":6}"#]);
        assert_eq!(texts(&count.process_keyed(Some(9), b"b", record("{}", "b", 5)).unwrap()), [r#"{"key":"b","count":1}"#]);
        assert!(count.checkpoint().unwrap().is_empty(), "no whole-instance state");
        let writes = count.checkpoint_cells().unwrap();
        assert_eq!(writes.iter().map(|w| (w.key.to_vec(), w.resident_bytes)).collect::<Vec<_>>(), [(b"a".to_vec(), 9), (b"b".to_vec(), 9)]);
        assert_eq!(ops(&writes[0]), [(0, CellOp::Put, b"a".to_vec(), 6i64.to_le_bytes().to_vec())]);

        // A new harness given what the writes left goes on counting.
        let mut restored = StepHarness::new("running_count", config).unwrap();
        restored.restore_cells(&writes).unwrap();
        assert_eq!(texts(&restored.process_keyed(Some(9), b"b", record("{}", "b", 6)).unwrap()), [r#"{"key":"b","count":2}"#]);
        // Settled as keyed: a record without its key is refused, as in a keyed session.
        let error = restored.process(Some(9), record("{}", "b", 7)).unwrap_err();
        assert_eq!(error, "a record without its key, in a session whose steps keep cells under the record's key");
    }

    #[test]
    fn running_count_run_without_keys_keeps_no_cells_and_its_cells_cannot_be_reached_then() {
        let mut count = StepHarness::new("running_count", r#"{"key_header": "user"}"#).unwrap();
        count.set_processing_time(1_000).unwrap();
        count.process(Some(7), record("{}", "a", 5)).unwrap();
        let error = count.process_keyed(Some(7), b"a", record("{}", "a", 6)).unwrap_err();
        assert!(error.starts_with("the harness runs step 'running_count' as in a session that is not keyed"), "{error}");
        assert!(count.map_cell("counts").is_err());
        assert_eq!(texts(&count.process(Some(7), record("{}", "a", 6)).unwrap()), [r#"{"key":"a","count":2}"#]);
    }

    #[test]
    fn a_batch_closes_by_max_wait_on_a_later_record_once_the_clock_moved() {
        let mut batch = StepHarness::new("batch", r#"{"max_count": 10, "max_wait_ms": 100}"#).unwrap();
        batch.set_processing_time(1_000).unwrap();
        assert!(batch.process(None, record("1", "a", 1)).unwrap().is_empty());
        batch.set_processing_time(1_050).unwrap();
        assert!(batch.process(None, record("2", "a", 2)).unwrap().is_empty());
        batch.set_processing_time(1_100).unwrap();
        // The open batch has waited 100 ms: it closes before the record that came after, which opens the next.
        let closed = batch.process(None, record("3", "a", 3)).unwrap();
        assert_eq!(texts(&closed), vec!["[1,2]"]);
        assert_eq!((closed[0].headers.get("batch_size").map(String::as_str), closed[0].timestamp), (Some("2"), 2));
        assert_eq!(texts(&batch.end_input().unwrap()), vec!["[3]"]);
    }

    #[test]
    fn watermarks_reach_every_instance_in_key_group_order_and_end_input_flushes() {
        let mut batch = StepHarness::new("batch", r#"{"max_count": 10}"#).unwrap();
        batch.set_processing_time(0).unwrap();
        batch.process(Some(5), record("5", "a", 1)).unwrap();
        batch.process(None, record("0", "a", 1)).unwrap();
        batch.process(Some(2), record("2", "a", 1)).unwrap();
        assert_eq!(texts(&batch.end_input().unwrap()), vec!["[0]", "[2]", "[5]"]);
        batch.close();
        assert_eq!(batch.watermark(1).unwrap_err(), "session closed");
    }

    #[test]
    fn a_failure_returns_the_steps_error_and_ends_the_harness() {
        let mut add = StepHarness::named("add", "append_field", r#"{"field": "x", "value": 1}"#).unwrap();
        assert_eq!(texts(&add.process(None, record("{}", "a", 1)).unwrap()), vec![r#"{"x":1}"#]);
        let error = add.process(None, record("not json", "a", 2)).unwrap_err();
        assert!(error.starts_with("step 'add' (append_field) failed: step 'add' (append_field): the payload is not JSON"), "{error}");
        let refused = add.process(None, record("{}", "a", 3)).unwrap_err();
        assert!(refused.starts_with("session already failed: step 'add'"), "{refused}");
        assert!(add.watermark(4).is_err());
    }

    #[test]
    fn a_steps_cells_are_loaded_per_key_checkpointed_as_writes_and_restored_into_a_new_harness() {
        let mut count = StepHarness::named("count", CELL_COUNTER_TYPE, "").unwrap();
        assert_eq!(texts(&count.process_keyed(Some(1), b"a", record("x", "a", 1)).unwrap()), ["total=1 seen=x=1"]);
        assert_eq!(texts(&count.process_keyed(Some(2), b"b", record("x", "b", 1)).unwrap()), ["total=1 seen=x=1"]);
        assert_eq!(texts(&count.process_keyed(Some(1), b"a", record("y", "a", 2)).unwrap()), ["total=2 seen=x=1,y=2"]);
        let writes = count.checkpoint_cells().unwrap();
        assert_eq!(writes.iter().map(|w| w.key.to_vec()).collect::<Vec<_>>(), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(ops(&writes[1]), [(0, CellOp::Set, vec![], b"1".to_vec()), (1, CellOp::Put, b"x".to_vec(), b"1".to_vec())]);
        assert!(count.checkpoint_cells().unwrap().is_empty(), "the cells are clean after a checkpoint");
        assert_eq!(texts(&count.process_keyed(Some(1), b"a", record("clear", "a", 3)).unwrap()), ["total=0 seen="]);
        let cleared = count.checkpoint_cells().unwrap();

        // A new harness holds what the writes left, and loads a key's cells before its first record.
        let mut restored = StepHarness::named("count", CELL_COUNTER_TYPE, "").unwrap();
        restored.restore_cells(&writes).unwrap();
        restored.restore_cells(&cleared).unwrap();
        assert_eq!(texts(&restored.process_keyed(Some(2), b"b", record("z", "b", 4)).unwrap()), ["total=2 seen=x=1,z=2"]);
        assert_eq!(texts(&restored.process_keyed(Some(1), b"a", record("z", "a", 4)).unwrap()), ["total=1 seen=z=1"]);
    }

    #[test]
    fn a_test_reads_and_writes_a_keys_cells_and_a_ttl_runs_on_the_stamped_clock() {
        let mut count = StepHarness::new(CELL_COUNTER_TYPE, r#"{"ttl_ms": 1000}"#).unwrap();
        let (total, seen) = (count.value_cell("total").unwrap(), count.map_cell("seen").unwrap());
        count.set_processing_time(10_000).unwrap();
        count.with_key(b"a", || {
            total.set(b"41").unwrap();
            seen.put(b"old", b"1").unwrap();
        }).unwrap();
        count.set_processing_time(10_999).unwrap();
        assert_eq!(texts(&count.process_keyed(None, b"a", record("new", "a", 1)).unwrap()), ["total=42 seen=new=42,old=1"]);
        count.set_processing_time(11_000).unwrap();
        assert_eq!(count.with_key(b"a", || (total.get().unwrap(), seen.entries().unwrap())).unwrap(), (Some(b"42".to_vec()), vec![(b"new".to_vec(), b"42".to_vec())]));
        let writes = count.checkpoint_cells().unwrap();
        let put_old = ops(&writes[0]).into_iter().find(|(_, _, key, _)| key == b"old").expect("old is written");
        assert_eq!(put_old.3, [&10_000i64.to_le_bytes()[..], b"1"].concat(), "a TTL cell's value is written behind its write time");
        assert!(total.get().unwrap_err().0.contains("get() outside the handling of a record"));
        assert!(count.map_cell("total").err().unwrap().contains("is a Value cell, not a Map cell"));
    }

    #[test]
    fn a_step_with_cells_needs_the_records_key() {
        let mut count = StepHarness::named("count", CELL_COUNTER_TYPE, "").unwrap();
        let error = count.process(None, record("x", "a", 1)).unwrap_err();
        assert_eq!(error, "a record without its key, in a session whose steps keep cells under the record's key");
    }

    #[test]
    fn a_step_that_cannot_be_built_is_refused() {
        let error = StepHarness::new("batch", r#"{"max_count": 0}"#).err().expect("refused");
        assert!(error.contains("step 'batch': config max_count"), "{error}");
    }

    #[test]
    fn timers_fire_as_the_bridge_fires_them_event_time_before_the_watermark_in_timestamp_order() {
        use crate::steps::tests::TIMER_STEP_TYPE;
        crate::python::tests::start_runtime();
        // The native TimerStep, and the same as a hosted Python step.
        for step_type in [TIMER_STEP_TYPE, crate::python::tests::TIMER_STEP] {
            let mut timers = StepHarness::named("t", step_type, r#"{"rearm_ms": 2}"#).unwrap();
            timers.process_keyed(Some(1), b"a", record(r#"{"do":"set:e:7 set:p:100 set:e:30 delete:e:30"}"#, "a", 1)).unwrap();
            timers.process_keyed(Some(2), b"b", record(r#"{"do":"set:e:5"}"#, "b", 1)).unwrap();
            assert_eq!(timers.pending_timers(b"a"), [(TimeDomain::EventTime, 7), (TimeDomain::ProcessingTime, 100)]);
            // b's at 5, then a's at 7; each firing sets one 2 ms later, which fires too while at or before 10.
            let fired = timers.watermark(10).unwrap();
            assert_eq!(texts(&fired), [
                r#"{"fired":5,"domain":"e","before":""}"#,
                r#"{"fired":7,"domain":"e","before":""}"#,
                r#"{"fired":7,"domain":"e","before":"5"}"#,
                r#"{"fired":9,"domain":"e","before":"7"}"#,
                r#"{"fired":9,"domain":"e","before":"5,7"}"#,
            ]);
            assert_eq!(timers.pending_timers(b"a"), [(TimeDomain::EventTime, 11), (TimeDomain::ProcessingTime, 100)]);
            assert!(timers.set_processing_time(99).unwrap().is_empty());
            assert_eq!(texts(&timers.set_processing_time(100).unwrap()), [r#"{"fired":100,"domain":"p","before":"7,9"}"#]);
            assert_eq!(timers.pending_timers(b"a"), [(TimeDomain::EventTime, 11), (TimeDomain::ProcessingTime, 102)]);
            let writes = timers.checkpoint_cells().unwrap();
            assert_eq!(ops(&writes[0]), [(0, CellOp::Set, vec![], b"7,9,100".to_vec())]);
        }
    }
}
