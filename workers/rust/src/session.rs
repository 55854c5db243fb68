//! One session's logic, fed strictly in order whatever the transport: every input gets its outputs and an end
//! of outputs, or an error, or, for a record a dead-letter step failed on, a failed input. After an error the
//! session refuses further input, since the bridge fails the task and Flink restarts from the last checkpoint.
//!
//! A session keeps one instance of its segment per Flink key group it has seen (one in all when the stream is
//! not keyed), so each instance's state is exactly its key group's and a rescale moves it with the keys.
//!
//! Its steps' cells (cells.rs) are per key, across key groups: in a keyed session each record comes with its key,
//! whose cells the bridge loaded before it (LOAD inputs) and the steps reach while they handle it; a barrier
//! takes what changed (`cell_writes`), then drops the keys it evicts.
//!
//! Its steps' timers (timers.rs) are per key too: while a keyed record or a firing (a TIMER input) is handled, its
//! steps may set and delete timers of its key, which its answer carries (`timer_changes`); a TIMER runs the named
//! step's `on_timer` with the key's cells, and what it emits goes through the steps after it.

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use crate::{catalog, error_text, log};
use crate::cells::{self, BuildContext, Cells, Declaration, Key};
use crate::proto::{KeyCells, TimerChanges, TimerFiring};
use crate::record::Record;
use crate::step::{write_bytes, Emit, StateReader, Step, StepContext, StepError, TimeDomain};
use crate::timers::Timers;

/// A step as `OpenSession` describes it.
#[derive(Clone, Debug)]
pub struct StepSpec {
    pub name: String,
    pub step_type: String,
    pub config_json: String,
    /// ON_ERROR_DEAD_LETTER: a record this step fails on is a failed input, not the session's failure.
    pub dead_letter: bool,
}

/// A key group, or None for a stream that is not keyed.
pub type KeyGroup = Option<u32>;

pub enum Input {
    /// A record, with its key in a keyed session.
    Record(KeyGroup, Option<Key>, Record),
    /// Part of the record input of this sequence number, before it: its key's cells (a keyed session's only).
    Load(u64, KeyCells),
    Watermark(i64),
    /// A checkpoint's barrier, with the keys whose cells the worker drops once it has answered it (clean by then:
    /// the bridge evicts only keys no input touched since the previous barrier).
    Barrier(Vec<Key>),
    Clock(i64),
    /// A timer of this key fires, to the instance of its key group (its LOADs before it, as a record's).
    Timer(KeyGroup, Key, TimerFiring),
}

/// How an input is answered when not with its outputs.
#[derive(Debug)]
pub enum Failure {
    /// ERROR, with its whole text: the session is failed.
    Session(String),
    /// INPUT_FAILED: a dead-letter step failed on the record, whose outputs are dropped; the session goes on.
    Input(FailedInput),
}

/// What an INPUT_FAILED answer names (docs/protocol.md, "Failed inputs").
#[derive(Debug)]
pub struct FailedInput {
    pub step: String,
    pub error_class: String,
    /// Whole: the data plane cuts it to what it sends (`cut_message`).
    pub message: String,
}

/// The class of the failure of a record one of whose outputs the data plane cannot send.
pub const OUTPUT_TOO_LARGE: &str = "flink_bridge_worker::OutputTooLarge";

impl FailedInput {
    /// The message cut as error texts are (docs/protocol.md, "Error texts"); the whole of a cut one is logged.
    pub fn cut_message(&self, session: &str, max_bytes: usize) -> Cow<'_, str> {
        let message = error_text::cut(&self.message, max_bytes);
        if matches!(message, Cow::Owned(_)) {
            log!("{session}: an input failed in step '{}', its message cut; the whole: {}", self.step, self.message);
        }
        message
    }
}

/// The steps of one segment run as one: the outputs of step k are the inputs of step k+1, and a watermark
/// passes the steps in order, so what step k emits on it reaches step k+1 before the watermark does.
struct Chain {
    steps: Vec<Box<dyn Step>>,
    names: Vec<(String, String)>,
}

impl Chain {
    /// Builds the steps in order, each declaring its cells into `cells` and its use of timers into `timers`
    /// (`keyed`: the session's stream is keyed).
    fn build(specs: &[StepSpec], cells: &Cells, timers: &Timers, keyed: bool) -> Result<Chain, String> {
        if specs.is_empty() {
            return Err("a segment needs at least one step".into());
        }
        cells.begin_build();
        timers.begin_build();
        let context = |index: usize, spec: &StepSpec| BuildContext::new(cells.clone(), &spec.name, keyed).with_timers(timers.clone(), index as u32);
        let steps = specs.iter().enumerate().map(|(i, s)| catalog::build(&s.name, &s.step_type, &s.config_json, &context(i, s))).collect::<Result<_, _>>()?;
        cells.end_build()?;
        timers.end_build()?;
        Ok(Chain { steps, names: specs.iter().map(|s| (s.name.clone(), s.step_type.clone())).collect() })
    }

    fn failed(&self, index: usize, error: impl std::fmt::Display) -> String {
        let (name, step_type) = &self.names[index];
        format!("step '{name}' ({step_type}) failed: {error}")
    }

    /// The error names the index of the step that failed.
    fn process(&mut self, record: Record, context: &StepContext, out: &mut Vec<Record>) -> Result<(), (usize, StepError)> {
        run_from(&mut self.steps, 0, record, context, out)
    }

    fn on_watermark(&mut self, timestamp: i64, context: &StepContext, out: &mut Vec<Record>) -> Result<(), String> {
        (0..self.steps.len()).try_for_each(|index| self.drive(index, context, out, |step, emit| step.on_watermark(timestamp, context, emit)))
    }

    /// A timer of step `index` fires: its `on_timer`, what it emits on through the steps after it.
    fn on_timer(&mut self, index: usize, timestamp: i64, domain: TimeDomain, context: &StepContext, out: &mut Vec<Record>) -> Result<(), String> {
        self.drive(index, context, out, |step, emit| step.on_timer(timestamp, domain, context, emit))
    }

    /// Runs `call` on step `index`, what it emits on through the steps after it; the error names the step that failed.
    fn drive(
        &mut self,
        index: usize,
        context: &StepContext,
        out: &mut Vec<Record>,
        call: impl FnOnce(&mut dyn Step, &mut Emit) -> Result<(), StepError>,
    ) -> Result<(), String> {
        let (this, rest) = self.steps[index..].split_first_mut().expect("index < len");
        let mut failure = None;
        let result = call(this.as_mut(), &mut |record| {
            if failure.is_none() {
                failure = run_from(rest, index + 1, record, context, out).err();
            }
        });
        match result.err().map(|e| (index, e)).or(failure) {
            Some((at, e)) => Err(self.failed(at, e)),
            None => Ok(()),
        }
    }

    /// The steps' states, each behind its length, behind the number of steps; empty when none holds any (the
    /// Java worker's encoding).
    fn snapshot_state(&self) -> Result<Vec<u8>, String> {
        let states = self.steps.iter().enumerate().map(|(i, s)| s.snapshot_state().map_err(|e| self.failed(i, e))).collect::<Result<Vec<_>, _>>()?;
        if states.iter().all(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let mut out = (states.len() as i32).to_be_bytes().to_vec();
        for state in &states {
            write_bytes(&mut out, state);
        }
        Ok(out)
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), String> {
        if state.is_empty() {
            return Ok(());
        }
        let mut reader = StateReader::new(state, "segment");
        let count = reader.int()?;
        if count as usize != self.steps.len() {
            return Err(format!(
                "cannot restore the segment's state: it holds {count} step states, but the segment has {} steps",
                self.steps.len()
            ));
        }
        for step in &mut self.steps {
            step.restore_state(reader.bytes("step state")?)?;
        }
        if reader.remaining() > 0 {
            return Err(format!("cannot restore the segment's state: {} bytes after the last step state", reader.remaining()));
        }
        Ok(())
    }
}

/// Feeds `record` to `steps[0]` (step number `first` of the chain), its outputs on through the rest; the error
/// names the index of the step that failed.
fn run_from(steps: &mut [Box<dyn Step>], first: usize, record: Record, context: &StepContext, out: &mut Vec<Record>) -> Result<(), (usize, StepError)> {
    let Some((this, rest)) = steps.split_first_mut() else {
        out.push(record);
        return Ok(());
    };
    let mut failure = None;
    let result = this.process(record, context, &mut |output| {
        if failure.is_none() {
            failure = run_from(rest, first + 1, output, context, out).err();
        }
    });
    match (result, failure) {
        (Err(e), _) => Err((first, e)),
        (Ok(()), Some(f)) => Err(f),
        (Ok(()), None) => Ok(()),
    }
}

pub struct Session {
    pub name: String,
    specs: Vec<StepSpec>,
    instances: BTreeMap<KeyGroup, Chain>,
    context: StepContext,
    failure: Option<String>,
    closed: bool,
    /// The stream is keyed by the pipeline's key (`OpenSessionRequest.keyed`): records come with their keys.
    keyed: bool,
    cells: Cells,
    timers: Timers,
    /// Whether a step declared timers (asked once: a record's answer looks for timer changes only then).
    has_timers: bool,
    /// The input whose LOADs came last, and their key: a further LOAD of it adds to what the first loaded.
    loading: Option<(u64, Key)>,
    /// The cells a served BARRIER took, until `cell_writes` cuts them into its answer's frames.
    barrier_writes: Vec<KeyCells>,
}

/// Why a session cannot open.
#[derive(Debug)]
pub enum Refused {
    /// A step cannot be built (INVALID_ARGUMENT).
    Steps(String),
    /// Its steps declare cells, but its stream is not keyed (FAILED_PRECONDITION).
    CellsWithoutKey(String),
    /// Its steps set timers, but its stream is not keyed (FAILED_PRECONDITION).
    TimersWithoutKey(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Steps(text) | Refused::CellsWithoutKey(text) | Refused::TimersWithoutKey(text) => f.write_str(text),
        }
    }
}

/// The instance of `key_group`, built when it is the first of its key group.
fn instance<'a>(instances: &'a mut BTreeMap<KeyGroup, Chain>, specs: &[StepSpec], cells: &Cells, timers: &Timers, keyed: bool, key_group: KeyGroup) -> Result<&'a mut Chain, String> {
    Ok(match instances.entry(key_group) {
        Entry::Occupied(chain) => chain.into_mut(),
        Entry::Vacant(vacant) => vacant.insert(Chain::build(specs, cells, timers, keyed)?),
    })
}

impl Session {
    /// A session whose stream is not keyed.
    #[cfg(test)]
    pub fn new(name: String, specs: Vec<StepSpec>) -> Result<Session, String> {
        Session::open(name, specs, false).map_err(|e| e.to_string())
    }

    /// Builds the steps once now, so that invalid steps refuse the session, and their cells are declared;
    /// instances come per key group later. A session that is not keyed refuses steps with cells or timers.
    pub fn open(name: String, specs: Vec<StepSpec>, keyed: bool) -> Result<Session, Refused> {
        let (cells, timers) = (Cells::new(), Timers::new());
        Chain::build(&specs, &cells, &timers, keyed).map_err(Refused::Steps)?;
        if let Some(cell) = cells.declarations().first().filter(|_| !keyed) {
            return Err(Refused::CellsWithoutKey(format!(
                "step '{}' declares cell '{}', but the session's stream is not keyed: cells live under the record's key: key the segment with bridge.key",
                cell.step, cell.name
            )));
        }
        if let Some((_, step)) = timers.declared().first().filter(|_| !keyed) {
            return Err(Refused::TimersWithoutKey(format!(
                "step '{step}' sets timers, but the session's stream is not keyed: a timer belongs to a key: key the segment with bridge.key"
            )));
        }
        let has_timers = timers.any_declared();
        Ok(Session {
            name,
            specs,
            instances: BTreeMap::new(),
            context: StepContext { clock: None },
            failure: None,
            closed: false,
            keyed,
            cells,
            timers,
            has_timers,
            loading: None,
            barrier_writes: Vec::new(),
        })
    }

    /// Whether the steps set timers (`OpenSessionResponse.timers`).
    pub fn has_timers(&self) -> bool {
        self.has_timers
    }

    /// After a RECORD or TIMER is served with its outputs: the timers its steps set or deleted, in order, for its
    /// TIMERS answer; None when they changed none (or the input failed).
    pub fn timer_changes(&self) -> Option<TimerChanges> {
        if !self.has_timers {
            return None;
        }
        self.timers.take_changes()
    }

    pub fn keyed(&self) -> bool {
        self.keyed
    }

    /// Every cell the steps declared: a cell's index is its id on the wire.
    pub fn cell_declarations(&self) -> Vec<Declaration> {
        self.cells.declarations()
    }

    /// Whether a record may be answered as a failed input: the data planes check its outputs before they send
    /// any only then, so that a segment without one sends as it always did.
    pub fn has_dead_letter_step(&self) -> bool {
        self.specs.iter().any(|s| s.dead_letter)
    }

    /// Serves one input: its outputs go to `out`, and are cleared when it fails.
    pub fn serve(&mut self, input: Input, out: &mut Vec<Record>) -> Result<(), Failure> {
        if self.closed {
            return Err(Failure::Session("session closed".into()));
        }
        if let Some(failure) = &self.failure {
            return Err(Failure::Session(format!("session already failed: {failure}")));
        }
        let loading = self.loading.take();
        let result = match input {
            Input::Record(key_group, key, record) => {
                let context = StepContext { clock: self.context.clock };
                let (cells, timers) = (&self.cells, &self.timers);
                // The key's cells and timers are reachable while the steps handle the record, not while an instance
                // is built.
                let result = instance(&mut self.instances, &self.specs, cells, timers, self.keyed, key_group).and_then(|chain| {
                    match &key {
                        Some(key) => {
                            cells.enter(key, context.current_time_millis())?;
                            timers.enter();
                        }
                        None if cells.is_empty() => {}
                        None => return Err("a record without its key, in a session whose steps keep cells under the record's key".to_string()),
                    }
                    let processed = chain.process(record, &context, out).map_err(|(index, error)| {
                        if self.specs[index].dead_letter {
                            let step = self.specs[index].name.clone();
                            Failure::Input(FailedInput { step, error_class: error.class.into_owned(), message: error.message })
                        } else {
                            Failure::Session(chain.failed(index, error))
                        }
                    });
                    cells.leave();
                    timers.leave();
                    Ok(processed)
                });
                match result {
                    Ok(Err(Failure::Input(failed))) => {
                        out.clear();
                        self.timers.drop_changes();
                        return Err(Failure::Input(failed));
                    }
                    Ok(Err(Failure::Session(text))) | Err(text) => Err(text),
                    Ok(Ok(())) => Ok(()),
                }
            }
            Input::Load(sequence, cells) => self.load(sequence, cells, loading),
            Input::Watermark(timestamp) => {
                let context = &self.context;
                self.instances.values_mut().try_for_each(|chain| chain.on_watermark(timestamp, context, out))
            }
            Input::Barrier(evict) => {
                // The writes first, so that nothing changed is lost with an evicted key; the answer (`cell_writes`)
                // is all that is left of the barrier then.
                self.barrier_writes.extend(self.cells.take_writes());
                self.cells.evict(&evict);
                Ok(())
            }
            Input::Clock(millis) => {
                self.context.clock = Some(millis);
                Ok(())
            }
            Input::Timer(key_group, key, firing) => self.fire(key_group, &key, &firing, out),
        };
        result.map_err(|e| {
            out.clear();
            self.timers.drop_changes();
            self.failure = Some(e.clone());
            let text = format!("{}: {e}", self.name);
            // Its whole text, logged here once: the data plane cuts the ERROR it answers with to what the bridge takes.
            log!("an input failed: {text}");
            Failure::Session(text)
        })
    }

    /// A TIMER: step `firing.step`'s `on_timer` with the key's cells and timers, its outputs through the steps after
    /// it. Any failure is the session's (a firing is no record to send aside), as is a firing the steps cannot have
    /// asked for.
    fn fire(&mut self, key_group: KeyGroup, key: &[u8], firing: &TimerFiring, out: &mut Vec<Record>) -> Result<(), String> {
        if !self.has_timers {
            return Err("the bridge sent a TIMER in a session whose steps set no timers (it opened with timers false)".into());
        }
        let index = firing.step as usize;
        let Some(spec) = self.specs.get(index) else {
            return Err(format!("a TIMER names step {index}, but the session has {} steps", self.specs.len()));
        };
        if !self.timers.is_declared(firing.step) {
            return Err(format!("a TIMER names step '{}' (index {index}), which sets no timers", spec.name));
        }
        let Some(domain) = TimeDomain::from_proto(firing.domain) else {
            return Err(format!("a TIMER of step '{}' names time domain {}, neither EVENT_TIME nor PROCESSING_TIME", spec.name, firing.domain));
        };
        let context = StepContext { clock: self.context.clock };
        let chain = instance(&mut self.instances, &self.specs, &self.cells, &self.timers, self.keyed, key_group)?;
        self.cells.enter_firing(key, context.current_time_millis())?;
        self.timers.enter();
        let fired = chain.on_timer(index, firing.timestamp, domain, &context, out);
        self.cells.leave();
        self.timers.leave();
        fired
    }

    /// A LOAD of input `sequence`: its first makes the key resident with exactly what it carries, a further one (the
    /// same input's, after `loading`) adds to it.
    fn load(&mut self, sequence: u64, loaded: KeyCells, loading: Option<(u64, Key)>) -> Result<(), String> {
        if !self.keyed {
            return Err(format!("the bridge sent a LOAD (input #{sequence}) in a session whose stream is not keyed"));
        }
        let first = match loading {
            Some((earlier, key)) if earlier == sequence => {
                if key != loaded.key[..] {
                    return Err(format!(
                        "the LOADs of input #{sequence} name two keys, {} and {}: they carry the cells of the one record that follows them",
                        cells::describe_key(&key),
                        cells::describe_key(&loaded.key)
                    ));
                }
                false
            }
            _ => true,
        };
        let key = loaded.key.to_vec();
        self.cells.load(loaded, first)?;
        self.loading = Some((sequence, key));
        Ok(())
    }

    /// After a BARRIER is served: the cells changed since the last (that it took), as CELL_WRITES bodies of at most
    /// `target` bytes each (a single write alone up to `max`), each piece with its key's resident_bytes. A write that
    /// no frame holds fails the session, as an error of the barrier.
    pub fn cell_writes(&mut self, target: usize, max: usize) -> Result<Vec<KeyCells>, Failure> {
        let mut pieces = Vec::new();
        for key_cells in std::mem::take(&mut self.barrier_writes) {
            match cells::split(key_cells, target, max) {
                Ok(split) => pieces.extend(split),
                Err(e) => {
                    let text = format!("{}: the cells changed since the last barrier cannot be sent: {e}; give the session larger rings", self.name);
                    log!("an input failed: {text}");
                    self.failure = Some(text.clone());
                    return Err(Failure::Session(text));
                }
            }
        }
        Ok(pieces)
    }

    /// Runs `f` as if a record of `key` were being handled (its cells reachable), for the harness.
    #[cfg(test)]
    pub fn with_key<R>(&mut self, key: &[u8], f: impl FnOnce() -> R) -> Result<R, String> {
        self.cells.enter(key, self.context.current_time_millis())?;
        let result = f();
        self.cells.leave();
        Ok(result)
    }

    #[cfg(test)]
    pub fn is_resident(&self, key: &[u8]) -> bool {
        self.cells.is_resident(key)
    }

    #[cfg(test)]
    pub fn cells(&self) -> &Cells {
        &self.cells
    }

    /// The failed input that answers a record one of whose outputs the data plane cannot send (`why`), in a segment
    /// with a dead-letter step: that output passed them all, and is named after the last, the nearest to it.
    pub fn output_unsendable(&self, why: String) -> FailedInput {
        // The record fails: it changes no timer.
        self.timers.drop_changes();
        let step = self.specs.iter().rev().find(|s| s.dead_letter).expect("a segment with a dead-letter step");
        FailedInput { step: step.name.clone(), error_class: OUTPUT_TOO_LARGE.into(), message: why }
    }

    /// Each instance's state by key group, empty ones left out; an error names the step that failed.
    pub fn snapshot(&self) -> Result<Vec<(KeyGroup, Vec<u8>)>, String> {
        let mut states = Vec::new();
        for (key_group, chain) in &self.instances {
            let state = chain.snapshot_state().map_err(|e| format!("key group {}: {e}", describe_key_group(*key_group)))?;
            if !state.is_empty() {
                states.push((*key_group, state));
            }
        }
        Ok(states)
    }

    pub fn restore(&mut self, states: BTreeMap<KeyGroup, Vec<u8>>) -> Result<(), String> {
        for (key_group, state) in states {
            if self.instances.contains_key(&key_group) {
                return Err(format!("key group {} already holds state", describe_key_group(key_group)));
            }
            instance(&mut self.instances, &self.specs, &self.cells, &self.timers, self.keyed, key_group)?.restore_state(&state).map_err(|e| format!("key group {}: {e}", describe_key_group(key_group)))?;
        }
        Ok(())
    }

    pub fn checkpoint_finished(&mut self, checkpoint_id: i64, completed: bool) {
        for chain in self.instances.values_mut() {
            chain.steps.iter_mut().for_each(|s| s.checkpoint_finished(checkpoint_id, completed));
        }
    }

    /// The data plane found the bridge's input wrong: every later input is answered with an error.
    pub fn fail(&mut self, why: &str) {
        self.failure.get_or_insert_with(|| why.to_string());
    }

    pub fn close(&mut self) {
        self.closed = true;
        self.instances.clear();
    }
}

pub fn describe_key_group(key_group: KeyGroup) -> String {
    key_group.map_or_else(|| "(not keyed)".into(), |k| k.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::python::tests::start_runtime;
    use crate::step::NATIVE_ERROR;
    use crate::steps::ECHO_TYPE;

    pub(crate) fn spec(name: &str, step_type: &str, config: &str) -> StepSpec {
        StepSpec { name: name.into(), step_type: step_type.into(), config_json: config.into(), dead_letter: false }
    }

    pub(crate) fn dead_letter(name: &str, step_type: &str, config: &str) -> StepSpec {
        StepSpec { dead_letter: true, ..spec(name, step_type, config) }
    }

    /// An echo, then a dead-letter append_field 'add' that fails on what is not a JSON object: the echo's output
    /// for such a record is one that must not be sent.
    pub(crate) fn echo_then_add() -> Vec<StepSpec> {
        vec![spec("echo", ECHO_TYPE, ""), dead_letter("add", "append_field", "")]
    }

    /// What append_field 'add' fails with on a payload that is not JSON.
    pub(crate) const NOT_JSON: &str = "step 'add' (append_field): the payload is not JSON: ";

    fn failed_input(served: Result<(), Failure>) -> FailedInput {
        match served {
            Err(Failure::Input(failed)) => failed,
            other => panic!("not a failed input: {other:?}"),
        }
    }

    fn session_error(served: Result<(), Failure>) -> String {
        match served {
            Err(Failure::Session(text)) => text,
            other => panic!("not an error: {other:?}"),
        }
    }

    fn record(payload: &str, key: &str) -> Record {
        let mut r = Record { payload: payload.as_bytes().to_vec(), timestamp: 7, ..Default::default() };
        r.headers.insert("k".into(), key.into());
        r
    }

    #[test]
    fn a_chain_feeds_each_steps_outputs_to_the_next() {
        let mut session = Session::new("s".into(), vec![spec("a", "append_field", r#"{"field":"x","value":1}"#), spec("c", "running_count", r#"{"key_json_field":"x"}"#)]).unwrap();
        let mut out = Vec::new();
        session.serve(Input::Record(Some(3), None, record("{\"a\":true}", "one")), &mut out).unwrap();
        assert_eq!(String::from_utf8(out[0].payload.clone()).unwrap(), r#"{"key":"1","count":1}"#);
        assert_eq!(out[0].timestamp, 7);
    }

    #[test]
    fn state_is_per_key_group_and_restores_into_a_new_session() {
        let steps = vec![spec("c", "running_count", r#"{"key_header":"k"}"#)];
        let mut first = Session::new("s".into(), steps.clone()).unwrap();
        let mut out = Vec::new();
        for (kg, key) in [(1, "a"), (2, "b"), (1, "a")] {
            first.serve(Input::Record(Some(kg), None, record("{}", key)), &mut out).unwrap();
        }
        let states: BTreeMap<_, _> = first.snapshot().unwrap().into_iter().collect();
        assert_eq!(states.keys().copied().collect::<Vec<_>>(), vec![Some(1), Some(2)]);
        let mut second = Session::new("s".into(), steps).unwrap();
        second.restore(states).unwrap();
        out.clear();
        second.serve(Input::Record(Some(1), None, record("{}", "a")), &mut out).unwrap();
        assert_eq!(out[0].payload, br#"{"key":"a","count":3}"#);
    }

    #[test]
    fn a_failed_step_fails_the_session_naming_the_step() {
        let mut session = Session::new("s".into(), vec![spec("add", "append_field", "{}")]).unwrap();
        let mut out = Vec::new();
        let error = session_error(session.serve(Input::Record(None, None, record("not json", "a")), &mut out));
        assert!(error.contains("step 'add' (append_field) failed"), "{error}");
        let later = session_error(session.serve(Input::Barrier(Vec::new()), &mut out));
        assert!(later.contains("session already failed"), "{later}");
    }

    #[test]
    fn a_record_a_dead_letter_step_fails_on_is_a_failed_input_without_outputs_and_the_session_goes_on() {
        let mut session = Session::new("s".into(), echo_then_add()).unwrap();
        let mut out = Vec::new();
        session.serve(Input::Record(None, None, record(r#"{"a":1}"#, "k")), &mut out).unwrap();
        assert_eq!(out.drain(..).map(|r| r.payload).collect::<Vec<_>>(), [br#"{"a":1,"processed":true}"#]);

        let failed = failed_input(session.serve(Input::Record(None, None, record("not json", "k")), &mut out));
        assert_eq!((failed.step.as_str(), failed.error_class.as_str()), ("add", NATIVE_ERROR));
        assert!(failed.message.starts_with(NOT_JSON), "{}", failed.message);
        assert!(out.is_empty(), "the echo's output of the failed record is kept: {out:?}");

        session.serve(Input::Record(None, None, record(r#"{"b":2}"#, "k")), &mut out).unwrap();
        session.serve(Input::Watermark(i64::MAX), &mut out).unwrap();
        assert_eq!(out.drain(..).map(|r| r.payload).collect::<Vec<_>>(), [br#"{"b":2,"processed":true}"#]);
    }

    #[test]
    fn a_failing_step_that_is_not_dead_letter_fails_the_session_beside_one_that_is() {
        let mut session = Session::new("s".into(), vec![spec("add", "append_field", ""), dead_letter("count", "running_count", r#"{"key_header":"k"}"#)]).unwrap();
        let error = session_error(session.serve(Input::Record(None, None, record("not json", "k")), &mut Vec::new()));
        assert!(error.contains("step 'add' (append_field) failed"), "{error}");
    }

    #[test]
    fn a_hosted_segments_outputs_before_a_later_dead_letter_steps_failure_are_not_kept() {
        start_runtime();
        // Plain answers the record and the record with "!" after its payload, which is no JSON.
        let mut session = Session::new("s".into(), vec![spec("plain", "hosted_segments.Plain", ""), dead_letter("add", "append_field", "")]).unwrap();
        let mut out = Vec::new();
        let failed = failed_input(session.serve(Input::Record(None, None, record("{}", "k")), &mut out));
        assert_eq!(failed.step, "add");
        assert!(out.is_empty(), "the output of '{{}}' before the failure is kept: {out:?}");
    }

    #[test]
    fn a_hosted_segments_exception_is_a_failed_input_of_its_class_on_a_record_and_an_error_on_a_watermark() {
        start_runtime();
        let mut session = Session::new("s".into(), vec![dead_letter("rejects", "hosted_segments.RejectsBad", "")]).unwrap();
        let mut out = Vec::new();
        let failed = failed_input(session.serve(Input::Record(None, None, record("bad", "k")), &mut out));
        assert_eq!((failed.step.as_str(), failed.error_class.as_str()), ("rejects", "hosted_segments.Rejected"));
        assert!(failed.message.starts_with("told to reject it"), "{}", failed.message);
        session.serve(Input::Record(None, None, record("good", "k")), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        let error = session_error(session.serve(Input::Watermark(1), &mut out));
        assert!(error.contains("step 'rejects' (hosted_segments.RejectsBad) failed: hosted_segments.Rejected: told to reject the watermark"), "{error}");
    }

    #[test]
    fn a_batch_closes_on_the_stamped_clock_only() {
        let mut session = Session::new("s".into(), vec![spec("b", "batch", r#"{"max_wait_ms":10}"#)]).unwrap();
        let mut out = Vec::new();
        session.serve(Input::Clock(1000), &mut out).unwrap();
        session.serve(Input::Record(None, None, record("1", "a")), &mut out).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        session.serve(Input::Watermark(5), &mut out).unwrap();
        assert!(out.is_empty());
        session.serve(Input::Clock(1010), &mut out).unwrap();
        session.serve(Input::Watermark(6), &mut out).unwrap();
        assert_eq!(out[0].payload, b"[1]");
        assert_eq!(out[0].headers.get("batch_size").map(String::as_str), Some("1"));
    }

    #[test]
    fn an_unknown_step_type_refuses_the_session_naming_the_step() {
        let error = Session::new("s".into(), vec![spec("mine", "com.example.Nope", "{}")]).err().unwrap();
        assert!(error.contains("step 'mine'"), "{error}");
    }

    // Cells (docs/protocol.md, "Cells"): the native CellCounter (cells.rs) and the same in Python, through a session.

    use crate::cells::tests::{content_entries, content_value, load_of, ops, CELL_COUNTER_TYPE};
    use crate::proto::CellOp;

    fn counter(step_type: &str, config: &str) -> Session {
        if step_type != CELL_COUNTER_TYPE {
            start_runtime();
        }
        Session::open("s".into(), vec![spec("count", step_type, config)], true).unwrap()
    }

    fn keyed(session: &mut Session, key_group: u32, key: &str, payload: &str) -> Result<String, Failure> {
        let mut out = Vec::new();
        session.serve(Input::Record(Some(key_group), Some(key.as_bytes().to_vec()), record(payload, key)), &mut out)?;
        assert_eq!(out.len(), 1);
        Ok(String::from_utf8(out.remove(0).payload).unwrap())
    }

    fn barrier(session: &mut Session) -> Vec<(String, Vec<(u32, CellOp, Vec<u8>, Vec<u8>)>)> {
        session.serve(Input::Barrier(Vec::new()), &mut Vec::new()).unwrap();
        let writes = session.cell_writes(usize::MAX, usize::MAX).unwrap();
        writes.iter().map(|w| (String::from_utf8(w.key.to_vec()).unwrap(), ops(w))).collect()
    }

    fn bytes(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    fn a_steps_cells_are_its_records_keys_loaded_changed_and_written_back_at_barriers(step_type: &str) {
        let mut session = counter(step_type, "");
        assert_eq!(session.cell_declarations().iter().map(|d| (d.step.as_str(), d.name.as_str())).collect::<Vec<_>>(), [("count", "total"), ("count", "seen")]);
        let mut out = Vec::new();
        session.serve(Input::Load(1, load_of(b"a", vec![content_value(0, b"4"), content_entries(1, &[(b"x", b"4")])])), &mut out).unwrap();
        assert_eq!(keyed(&mut session, 1, "a", "y").unwrap(), "total=5 seen=x=4,y=5");
        session.serve(Input::Load(2, load_of(b"b", Vec::new())), &mut out).unwrap();
        // A key of another key group: another instance of the step, the same cells.
        assert_eq!(keyed(&mut session, 2, "b", "y").unwrap(), "total=1 seen=y=1");
        assert_eq!(keyed(&mut session, 1, "a", "x").unwrap(), "total=6 seen=x=6,y=5");
        assert!(out.is_empty());

        let (set, clear, put) = (CellOp::Set, CellOp::Clear, CellOp::Put);
        assert_eq!(
            barrier(&mut session),
            [
                ("a".into(), vec![(0, set, vec![], bytes("6")), (1, put, bytes("x"), bytes("6")), (1, put, bytes("y"), bytes("5"))]),
                ("b".into(), vec![(0, set, vec![], bytes("1")), (1, put, bytes("y"), bytes("1"))]),
            ]
        );
        assert_eq!(keyed(&mut session, 2, "b", "clear").unwrap(), "total=0 seen=");
        assert_eq!(barrier(&mut session), [("b".into(), vec![(0, clear, vec![], vec![]), (1, clear, vec![], vec![])])]);
        assert!(barrier(&mut session).is_empty(), "the cells are clean after a barrier");

        let Err(Failure::Session(error)) = keyed(&mut session, 1, "c", "x") else { panic!("a key that is not resident is served") };
        assert!(error.starts_with("s: the record's key 'c' is not resident: no LOAD of it came in this session"), "{error}");
    }

    #[test]
    fn a_native_steps_cells_are_its_records_keys_loaded_changed_and_written_back_at_barriers() {
        a_steps_cells_are_its_records_keys_loaded_changed_and_written_back_at_barriers(CELL_COUNTER_TYPE);
    }

    #[test]
    fn a_hosted_python_steps_cells_are_its_records_keys_loaded_changed_and_written_back_at_barriers() {
        a_steps_cells_are_its_records_keys_loaded_changed_and_written_back_at_barriers("hosted_segments.CellCounter");
    }

    fn a_ttl_cells_values_carry_their_write_time_and_expire_on_the_bridges_clock(step_type: &str) {
        let mut session = counter(step_type, r#"{"ttl_ms": 100}"#);
        assert_eq!(session.cell_declarations()[1].ttl_ms, 100);
        let mut out = Vec::new();
        session.serve(Input::Clock(1_000), &mut out).unwrap();
        let written_at = |millis: i64, value: &str| [&millis.to_le_bytes()[..], value.as_bytes()].concat();
        session.serve(Input::Load(1, load_of(b"a", vec![content_entries(1, &[(b"old", &written_at(950, "9"))])])), &mut out).unwrap();
        assert_eq!(keyed(&mut session, 1, "a", "x").unwrap(), "total=1 seen=old=9,x=1");
        session.serve(Input::Clock(1_099), &mut out).unwrap();
        assert_eq!(keyed(&mut session, 1, "a", "y").unwrap(), "total=2 seen=x=1,y=2", "written at 950 with a TTL of 100: gone at 1050");
        session.serve(Input::Clock(1_100), &mut out).unwrap();
        assert_eq!(keyed(&mut session, 1, "a", "z").unwrap(), "total=3 seen=y=2,z=3");
        let writes = barrier(&mut session);
        assert_eq!(writes[0].1[1..], [
            (1, CellOp::Put, bytes("x"), written_at(1_000, "1")),
            (1, CellOp::Put, bytes("y"), written_at(1_099, "2")),
            (1, CellOp::Put, bytes("z"), written_at(1_100, "3")),
        ]);
        assert_eq!(writes[0].1[0], (0, CellOp::Set, vec![], bytes("3")), "a cell without TTL keeps no write time");
    }

    /// A barrier that evicts `evict`: each changed key's writes with its resident_bytes.
    fn barrier_evicting(session: &mut Session, evict: &[&str]) -> Vec<(String, u64, Vec<(u32, CellOp, Vec<u8>, Vec<u8>)>)> {
        session.serve(Input::Barrier(evict.iter().map(|key| bytes(key)).collect()), &mut Vec::new()).unwrap();
        let writes = session.cell_writes(usize::MAX, usize::MAX).unwrap();
        writes.iter().map(|w| (String::from_utf8(w.key.to_vec()).unwrap(), w.resident_bytes, ops(w))).collect()
    }

    fn a_barrier_evicts_keys_after_its_writes_and_an_evicted_keys_next_record_needs_a_load(step_type: &str) {
        let mut session = counter(step_type, "");
        let mut out = Vec::new();
        session.serve(Input::Load(1, load_of(b"a", vec![content_value(0, b"4"), content_entries(1, &[(b"x", b"4")])])), &mut out).unwrap();
        assert_eq!(keyed(&mut session, 1, "a", "y").unwrap(), "total=5 seen=x=4,y=5");
        session.serve(Input::Load(2, load_of(b"b", Vec::new())), &mut out).unwrap();
        assert_eq!(keyed(&mut session, 2, "b", "y").unwrap(), "total=1 seen=y=1");
        let resident: Vec<_> = barrier_evicting(&mut session, &[]).into_iter().map(|(key, bytes, _)| (key, bytes)).collect();
        assert_eq!(resident, [("a".into(), 1 + 2 + 2), ("b".into(), 1 + 2)]);

        assert_eq!(keyed(&mut session, 2, "b", "z").unwrap(), "total=2 seen=y=1,z=2");
        let (set, put) = (CellOp::Set, CellOp::Put);
        assert_eq!(
            barrier_evicting(&mut session, &["a", "never loaded"]),
            [("b".into(), 1 + 2 + 2, vec![(0, set, vec![], bytes("2")), (1, put, bytes("z"), bytes("2"))])],
            "the evicted key was clean: nothing of it is written"
        );
        assert!(!session.is_resident(b"a") && session.is_resident(b"b"));

        // Loaded again: what the LOAD carries, nothing of what the worker held before.
        session.serve(Input::Load(3, load_of(b"a", vec![content_value(0, b"10")])), &mut out).unwrap();
        assert_eq!(keyed(&mut session, 1, "a", "z").unwrap(), "total=11 seen=z=11");
        assert_eq!(keyed(&mut session, 2, "b", "w").unwrap(), "total=3 seen=w=3,y=1,z=2", "a key not evicted keeps its cells");
        // A changed key the barrier evicts (the bridge evicts only clean ones) is written before it is dropped.
        let written = barrier_evicting(&mut session, &["a"]);
        assert_eq!(written[0], ("a".into(), 2 + 1 + 2, vec![(0, set, vec![], bytes("11")), (1, put, bytes("z"), bytes("11"))]));
        assert!(!session.is_resident(b"a"));

        let Err(Failure::Session(error)) = keyed(&mut session, 1, "a", "x") else { panic!("an evicted key's record is served without a LOAD") };
        assert!(error.starts_with("s: the record's key 'a' is not resident: no LOAD of it came in this session"), "{error}");
    }

    #[test]
    fn a_native_steps_barrier_evicts_keys_after_its_writes_and_an_evicted_keys_next_record_needs_a_load() {
        a_barrier_evicts_keys_after_its_writes_and_an_evicted_keys_next_record_needs_a_load(CELL_COUNTER_TYPE);
    }

    #[test]
    fn a_hosted_python_steps_barrier_evicts_keys_after_its_writes_and_an_evicted_keys_next_record_needs_a_load() {
        a_barrier_evicts_keys_after_its_writes_and_an_evicted_keys_next_record_needs_a_load("hosted_segments.CellCounter");
    }

    #[test]
    fn a_native_ttl_cells_values_carry_their_write_time_and_expire_on_the_bridges_clock() {
        a_ttl_cells_values_carry_their_write_time_and_expire_on_the_bridges_clock(CELL_COUNTER_TYPE);
    }

    #[test]
    fn a_hosted_python_ttl_cells_values_carry_their_write_time_and_expire_on_the_bridges_clock() {
        a_ttl_cells_values_carry_their_write_time_and_expire_on_the_bridges_clock("hosted_segments.CellCounter");
    }

    #[test]
    fn a_cell_reached_outside_a_record_fails_naming_the_step_and_the_cell() {
        for (step_type, class) in [(CELL_COUNTER_TYPE, ""), ("hosted_segments.CellCounter", "RuntimeError: ")] {
            let mut session = counter(step_type, "");
            session.serve(Input::Load(1, load_of(b"a", Vec::new())), &mut Vec::new()).unwrap();
            keyed(&mut session, 1, "a", "x").unwrap();
            let error = session_error(session.serve(Input::Watermark(42), &mut Vec::new()));
            let expected = format!("failed: {class}step 'count' cell 'total': get() outside the handling of a record");
            assert!(error.contains(&expected), "{error}");
        }
    }

    #[test]
    fn a_further_load_of_the_same_input_adds_and_one_of_another_key_fails_the_session() {
        let mut session = counter(CELL_COUNTER_TYPE, "");
        let mut out = Vec::new();
        session.serve(Input::Load(7, load_of(b"a", vec![content_entries(1, &[(b"x", b"1")])])), &mut out).unwrap();
        session.serve(Input::Load(7, load_of(b"a", vec![content_value(0, b"2"), content_entries(1, &[(b"y", b"2")])])), &mut out).unwrap();
        assert_eq!(keyed(&mut session, 1, "a", "z").unwrap(), "total=3 seen=x=1,y=2,z=3");
        // A LOAD of the next input is a first one again: what the key held is replaced.
        session.serve(Input::Load(8, load_of(b"a", vec![content_entries(1, &[(b"w", b"5")])])), &mut out).unwrap();
        assert_eq!(keyed(&mut session, 1, "a", "z").unwrap(), "total=1 seen=w=5,z=1");

        session.serve(Input::Load(9, load_of(b"b", Vec::new())), &mut out).unwrap();
        let error = session_error(session.serve(Input::Load(9, load_of(b"c", Vec::new())), &mut out));
        assert!(error.contains("the LOADs of input #9 name two keys, 'b' and 'c'"), "{error}");
    }

    #[test]
    fn a_record_without_its_key_or_a_load_in_a_session_that_is_not_keyed_fails_the_session() {
        let mut keyed_session = counter(CELL_COUNTER_TYPE, "");
        let error = session_error(keyed_session.serve(Input::Record(None, None, record("x", "a")), &mut Vec::new()));
        assert!(error.contains("a record without its key, in a session whose steps keep cells"), "{error}");

        let mut unkeyed = Session::new("s".into(), vec![spec("echo", ECHO_TYPE, "")]).unwrap();
        let error = session_error(unkeyed.serve(Input::Load(3, load_of(b"a", Vec::new())), &mut Vec::new()));
        assert!(error.contains("the bridge sent a LOAD (input #3) in a session whose stream is not keyed"), "{error}");
    }

    #[test]
    fn a_keyed_session_whose_steps_keep_no_cells_serves_records_of_any_key() {
        let mut session = Session::open("s".into(), vec![spec("echo", ECHO_TYPE, "")], true).unwrap();
        let mut out = Vec::new();
        session.serve(Input::Record(Some(1), Some(b"never loaded".to_vec()), record("x", "a")), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        session.serve(Input::Barrier(Vec::new()), &mut out).unwrap();
        assert!(session.cell_writes(usize::MAX, usize::MAX).unwrap().is_empty());
    }

    #[test]
    fn steps_with_cells_refuse_a_session_that_is_not_keyed_naming_the_step_and_the_cell() {
        for step_type in [CELL_COUNTER_TYPE, "hosted_segments.CellCounter"] {
            if step_type != CELL_COUNTER_TYPE {
                start_runtime();
            }
            let steps = vec![spec("echo", ECHO_TYPE, ""), spec("count", step_type, "")];
            let Err(Refused::CellsWithoutKey(error)) = Session::open("s".into(), steps, false) else { panic!("opened") };
            assert_eq!(error, "step 'count' declares cell 'total', but the session's stream is not keyed: cells live under the record's key: key the segment with bridge.key");
        }
    }

    #[test]
    fn python_cells_are_declared_in_init_only_once_each_and_hold_bytes() {
        start_runtime();
        let mut late = counter("hosted_segments.DeclaresLate", "");
        let error = session_error(late.serve(Input::Record(Some(1), Some(b"a".to_vec()), record("x", "a")), &mut Vec::new()));
        assert!(error.contains("RuntimeError: value_cell('late') is called while no step is being built: a step declares its cells in its class's __init__"), "{error}");

        let Err(Refused::Steps(error)) = Session::open("s".into(), vec![spec("twice", "hosted_segments.DeclaresTwice", "")], true) else { panic!("opened") };
        assert!(error.contains("ValueError: step 'twice' declares cell 'same' twice"), "{error}");

        let mut text = counter("hosted_segments.SetsAString", "");
        text.serve(Input::Load(1, load_of(b"a", Vec::new())), &mut Vec::new()).unwrap();
        let error = session_error(text.serve(Input::Record(Some(1), Some(b"a".to_vec()), record("x", "a")), &mut Vec::new()));
        assert!(error.contains("TypeError: step 'count' cell 'text': a value is bytes, not str"), "{error}");
    }

    // running_count in a keyed session (protocol 5): its counts in the map cell 'counts' of the record's key, each of
    // its own keys' UTF-8 bytes to the count as an i64 little-endian; no whole-instance state.

    fn running_count(keyed: bool, config: &str) -> Session {
        Session::open("s".into(), vec![spec("c", "running_count", config)], keyed).unwrap()
    }

    fn le(count: i64) -> Vec<u8> {
        count.to_le_bytes().to_vec()
    }

    #[test]
    fn a_keyed_sessions_running_count_declares_the_map_cell_counts_and_one_that_is_not_keyed_none() {
        let declared = running_count(true, r#"{"key_header":"k"}"#).cell_declarations();
        assert_eq!(declared, [Declaration { step: "c".into(), name: "counts".into(), kind: cells::CellKind::Map, ttl_ms: 0 }]);
        assert!(running_count(false, r#"{"key_header":"k"}"#).cell_declarations().is_empty());
    }

    #[test]
    fn a_keyed_sessions_running_count_counts_in_its_cell_from_what_was_loaded_and_writes_it_back_at_a_barrier() {
        let mut session = running_count(true, r#"{"key_header":"k"}"#);
        let mut out = Vec::new();
        session.serve(Input::Load(1, load_of(b"a", vec![content_entries(0, &[(b"a", &le(5))])])), &mut out).unwrap();
        session.serve(Input::Record(Some(3), Some(bytes("a")), record("{}", "a")), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].payload.as_slice(), out[0].headers.get("key").map(String::as_str), out[0].timestamp), (&br#"{"key":"a","count":6}"#[..], Some("a"), 7));
        // A key never counted starts at 1, in another key group's instance.
        session.serve(Input::Load(2, load_of(b"b", Vec::new())), &mut Vec::new()).unwrap();
        assert_eq!(keyed(&mut session, 9, "b", "{}").unwrap(), r#"{"key":"b","count":1}"#);
        assert_eq!(keyed(&mut session, 9, "b", "{}").unwrap(), r#"{"key":"b","count":2}"#);
        assert!(session.snapshot().unwrap().is_empty(), "no whole-instance state in a keyed session");

        let put = CellOp::Put;
        assert_eq!(
            barrier_evicting(&mut session, &[]),
            [("a".into(), 1 + 8, vec![(0, put, bytes("a"), le(6))]), ("b".into(), 1 + 8, vec![(0, put, bytes("b"), le(2))])]
        );
        assert!(barrier(&mut session).is_empty(), "the cells are clean after a barrier");
    }

    #[test]
    fn a_keyed_sessions_running_count_keeps_each_of_its_own_keys_under_the_records_key() {
        // Counting by a JSON field while the stream is keyed by something else: the record's key's map holds an entry
        // per key of the step's that came with it.
        let mut session = running_count(true, r#"{"key_json_field":"page"}"#);
        session.serve(Input::Load(1, load_of(b"user-1", vec![content_entries(0, &[(b"home", &le(2))])])), &mut Vec::new()).unwrap();
        for (payload, expected) in [(r#"{"page":"home"}"#, r#"{"key":"home","count":3}"#), (r#"{"page":"cart"}"#, r#"{"key":"cart","count":1}"#)] {
            assert_eq!(keyed(&mut session, 1, "user-1", payload).unwrap(), expected);
        }
        let written = barrier_evicting(&mut session, &[]);
        assert_eq!(written, [("user-1".into(), 4 + 8 + 4 + 8, vec![(0, CellOp::Put, bytes("cart"), le(1)), (0, CellOp::Put, bytes("home"), le(3))])]);
    }

    #[test]
    fn a_keyed_sessions_running_count_fails_on_a_count_that_is_not_eight_bytes_naming_the_step_the_key_and_the_cell() {
        let mut session = running_count(true, r#"{"key_header":"k"}"#);
        session.serve(Input::Load(1, load_of(b"a", vec![content_entries(0, &[(b"a", b"5")])])), &mut Vec::new()).unwrap();
        let error = session_error(session.serve(Input::Record(Some(1), Some(bytes("a")), record("{}", "a")), &mut Vec::new()));
        assert!(error.ends_with("step 'c' (running_count): the count of key 'a' in cell 'counts' is 1 bytes, not the 8 of an i64 little-endian"), "{error}");
    }

    #[test]
    fn whole_instance_running_count_state_cannot_be_restored_into_a_keyed_session() {
        let config = r#"{"key_header":"k"}"#;
        let mut unkeyed = running_count(false, config);
        unkeyed.serve(Input::Record(Some(4), None, record("{}", "a")), &mut Vec::new()).unwrap();
        let states: BTreeMap<_, _> = unkeyed.snapshot().unwrap().into_iter().collect();
        let length = states[&Some(4)].len() - 8;

        let error = running_count(true, config).restore(states.clone()).unwrap_err();
        assert_eq!(
            error,
            format!("key group 4: step 'c' (running_count): the checkpoint holds its counts as whole-instance state ({length} bytes): in a keyed session its counts live in cells (map cell 'counts') since protocol 5, so such a checkpoint, taken before, cannot be restored into it")
        );
        // Restored into a session that is not keyed, as before.
        let mut again = running_count(false, config);
        again.restore(states).unwrap();
        let mut out = Vec::new();
        again.serve(Input::Record(Some(4), None, record("{}", "a")), &mut out).unwrap();
        assert_eq!(out[0].payload, br#"{"key":"a","count":2}"#);
        // A keyed session restores what a keyed session's running_count leaves: nothing of its own.
        let mut keyed_session = running_count(true, config);
        keyed_session.restore(BTreeMap::new()).unwrap();
        // Another step's whole-instance state beside running_count's empty one restores: a keyed session's count of a
        // checkpoint taken before count kept its windows in cells, none open (its state: version 2, no window).
        let count_only = BTreeMap::from([(Some(2), [&2i32.to_be_bytes()[..], &5i32.to_be_bytes(), &[2, 0, 0, 0, 0], &0i32.to_be_bytes()].concat())]);
        let mut restored = Session::open("s".into(), vec![spec("b", "count", r#"{"window_ms": 10}"#), spec("c", "running_count", config)], true).unwrap();
        restored.restore(count_only).expect("the count's state beside running_count's empty one");
    }

    #[test]
    fn a_barrier_whose_writes_no_frame_holds_fails_the_session() {
        let mut session = counter(CELL_COUNTER_TYPE, "");
        session.serve(Input::Load(1, load_of(b"a", Vec::new())), &mut Vec::new()).unwrap();
        keyed(&mut session, 1, "a", &"x".repeat(100)).unwrap();
        session.serve(Input::Barrier(Vec::new()), &mut Vec::new()).unwrap();
        let Err(Failure::Session(error)) = session.cell_writes(50, 50) else { panic!("the writes were cut") };
        assert!(error.starts_with("s: the cells changed since the last barrier cannot be sent: a write of key 'a' (cell 1) takes"), "{error}");
        assert!(session_error(session.serve(Input::Barrier(Vec::new()), &mut Vec::new())).contains("session already failed"));
    }

    // Timers (docs/protocol.md, "Timers"): the native TimerStep (steps.rs) and the same in Python, through a session.

    use crate::proto::{TimerFiring, TimerOp};
    use crate::python::tests::TIMER_STEP;
    use crate::steps::tests::TIMER_STEP_TYPE;
    use crate::timers::tests::changes;

    /// The native TimerStep and the hosted Python one, each with what its errors' messages start with ("" for a
    /// native step's, the exception's class for Python's).
    fn timer_steps() -> [(&'static str, &'static str); 2] {
        start_runtime();
        [(TIMER_STEP_TYPE, ""), (TIMER_STEP, "RuntimeError: ")]
    }

    fn timed(steps: Vec<StepSpec>) -> Session {
        Session::open("s".into(), steps, true).unwrap()
    }

    fn keyed_record(session: &mut Session, key: &str, payload: &str, out: &mut Vec<Record>) -> Result<(), Failure> {
        session.serve(Input::Record(Some(1), Some(bytes(key)), record(payload, key)), out)
    }

    fn firing(step: u32, domain: TimeDomain, timestamp: i64) -> TimerFiring {
        TimerFiring { timestamp, step, domain: domain.to_proto() as i32 }
    }

    fn fire(session: &mut Session, key: &str, firing: TimerFiring, out: &mut Vec<Record>) -> Result<(), Failure> {
        session.serve(Input::Timer(Some(1), bytes(key), firing), out)
    }

    fn payloads(out: &[Record]) -> Vec<String> {
        out.iter().map(|r| String::from_utf8(r.payload.clone()).unwrap()).collect()
    }

    #[test]
    fn a_keyed_records_timer_changes_are_answered_in_order_once_and_a_failed_records_not_at_all() {
        for (step_type, _) in timer_steps() {
            let mut session = timed(vec![spec("t", step_type, r#"{"cells": false}"#)]);
            assert!(session.has_timers());
            let mut out = Vec::new();
            keyed_record(&mut session, "a", r#"{"do":"set:e:5 delete:p:7 set:p:9 delete:e:3"}"#, &mut out).unwrap();
            let (set, delete, event, processing) = (TimerOp::Set, TimerOp::Delete, TimeDomain::EventTime, TimeDomain::ProcessingTime);
            assert_eq!(changes(&session.timer_changes().unwrap()), [(set, 0, event, 5), (delete, 0, processing, 7), (set, 0, processing, 9), (delete, 0, event, 3)], "{step_type}");
            assert!(session.timer_changes().is_none(), "taken once");
            keyed_record(&mut session, "a", r#"{"do":""}"#, &mut out).unwrap();
            assert!(session.timer_changes().is_none(), "a record that changes no timer has no TIMERS");

            let error = session_error(keyed_record(&mut session, "a", r#"{"do":"set:e:11 fail"}"#, &mut out));
            assert!(error.contains("told to fail"), "{error}");
            assert!(session.timer_changes().is_none(), "a failed record changes no timer");
        }
    }

    #[test]
    fn a_record_a_dead_letter_step_fails_on_changes_no_timer_and_the_next_does() {
        for (step_type, _) in timer_steps() {
            let mut session = timed(vec![dead_letter("t", step_type, r#"{"cells": false}"#)]);
            let mut out = Vec::new();
            let failed = failed_input(keyed_record(&mut session, "a", r#"{"do":"set:e:11 fail"}"#, &mut out));
            assert_eq!(failed.step, "t");
            assert!(session.timer_changes().is_none());
            keyed_record(&mut session, "a", r#"{"do":"set:e:12"}"#, &mut out).unwrap();
            assert_eq!(changes(&session.timer_changes().unwrap()), [(TimerOp::Set, 0, TimeDomain::EventTime, 12)]);
        }
    }

    #[test]
    fn a_firing_runs_its_steps_on_timer_with_the_keys_cells_and_its_outputs_go_through_the_later_steps() {
        for (step_type, _) in timer_steps() {
            let mut session = timed(vec![spec("echo", ECHO_TYPE, ""), spec("t", step_type, r#"{"rearm_ms": 10}"#), spec("add", "append_field", "")]);
            let mut out = Vec::new();
            session.serve(Input::Load(1, load_of(b"a", vec![content_value(0, b"3")])), &mut out).unwrap();
            fire(&mut session, "a", firing(1, TimeDomain::EventTime, 5), &mut out).unwrap();
            assert_eq!(payloads(&out), [r#"{"fired":5,"domain":"e","before":"3","processed":true}"#], "{step_type}");
            assert_eq!(out[0].timestamp, 5);
            assert_eq!(changes(&session.timer_changes().unwrap()), [(TimerOp::Set, 1, TimeDomain::EventTime, 15)], "a firing sets timers as a record does");
            out.clear();
            fire(&mut session, "a", firing(1, TimeDomain::ProcessingTime, 20), &mut out).unwrap();
            assert_eq!(payloads(&out), [r#"{"fired":20,"domain":"p","before":"3,5","processed":true}"#]);
            assert_eq!(changes(&session.timer_changes().unwrap()), [(TimerOp::Set, 1, TimeDomain::ProcessingTime, 30)]);
            assert_eq!(barrier(&mut session), [("a".into(), vec![(0, CellOp::Set, vec![], bytes("3,5,20"))])]);

            let error = session_error(fire(&mut session, "b", firing(1, TimeDomain::EventTime, 5), &mut out));
            assert!(error.starts_with("s: the key 'b' of a TIMER is not resident: no LOAD of it came in this session"), "{error}");
        }
    }

    #[test]
    fn a_failure_on_a_firing_fails_the_session_even_in_a_dead_letter_step() {
        for (step_type, class) in timer_steps() {
            let mut session = timed(vec![dead_letter("t", step_type, r#"{"cells": false}"#), dead_letter("add", "append_field", "")]);
            let error = session_error(fire(&mut session, "a", firing(0, TimeDomain::EventTime, 666), &mut Vec::new()));
            assert!(error.contains(&format!("step 't' ({step_type}) failed: {class}told to fail at 666")), "{error}");
            assert!(session.timer_changes().is_none());
            assert!(session_error(keyed_record(&mut session, "a", "{}", &mut Vec::new())).contains("session already failed"));
        }
    }

    #[test]
    fn a_timer_the_steps_cannot_have_set_fails_the_session_naming_why() {
        let steps = || vec![spec("t", TIMER_STEP_TYPE, r#"{"cells": false}"#), spec("add", "append_field", "")];
        let violation = |steps: Vec<StepSpec>, firing: TimerFiring| session_error(fire(&mut timed(steps), "a", firing, &mut Vec::new()));
        let error = violation(vec![spec("echo", ECHO_TYPE, "")], firing(0, TimeDomain::EventTime, 1));
        assert!(error.contains("the bridge sent a TIMER in a session whose steps set no timers"), "{error}");
        let error = violation(steps(), firing(2, TimeDomain::EventTime, 1));
        assert!(error.contains("a TIMER names step 2, but the session has 2 steps"), "{error}");
        let error = violation(steps(), firing(1, TimeDomain::EventTime, 1));
        assert!(error.contains("a TIMER names step 'add' (index 1), which sets no timers"), "{error}");
        let error = violation(steps(), TimerFiring { timestamp: 1, step: 0, domain: 0 });
        assert!(error.contains("a TIMER of step 't' names time domain 0, neither EVENT_TIME nor PROCESSING_TIME"), "{error}");
    }

    #[test]
    fn steps_with_timers_refuse_a_session_that_is_not_keyed_naming_the_step() {
        for (step_type, _) in timer_steps() {
            let steps = vec![spec("echo", ECHO_TYPE, ""), spec("t", step_type, r#"{"cells": false}"#)];
            let Err(Refused::TimersWithoutKey(error)) = Session::open("s".into(), steps, false) else { panic!("opened") };
            assert_eq!(error, "step 't' sets timers, but the session's stream is not keyed: a timer belongs to a key: key the segment with bridge.key");
        }
        assert!(!Session::open("s".into(), vec![spec("echo", ECHO_TYPE, "")], true).unwrap().has_timers());
        assert!(!Session::open("s".into(), vec![spec("plain", "hosted_segments.Plain", "")], true).unwrap().has_timers());
    }

    #[test]
    fn a_timer_set_outside_a_keyed_record_fails_naming_the_step() {
        // The Python step's error is the Python worker's (flink_bridge.timers).
        let outside = [
            "step 't': set an event-time timer at 5 outside the handling of a keyed record or a firing",
            "flink_bridge.timers.TimerOutsideInput: step 't': a timer is set outside a keyed record or a firing",
        ];
        for ((step_type, _), expected) in timer_steps().into_iter().zip(outside) {
            let mut session = timed(vec![spec("t", step_type, r#"{"cells": false}"#)]);
            let error = session_error(session.serve(Input::Record(Some(1), None, record(r#"{"do":"set:e:5"}"#, "a")), &mut Vec::new()));
            assert!(error.contains(expected), "{error}");
        }
        let mut session = timed(vec![spec("marks", "hosted_segments.TimersOnWatermark", "")]);
        keyed_record(&mut session, "a", "x", &mut Vec::new()).unwrap();
        let error = session_error(session.serve(Input::Watermark(5), &mut Vec::new()));
        assert!(error.contains("TimerOutsideInput: step 'marks': a timer is set outside a keyed record or a firing"), "{error}");
    }

    #[test]
    fn python_timers_are_declared_in_init_every_time_the_step_is_built_and_handled_by_its_on_timer() {
        start_runtime();
        let refused = |step_type: &str| match Session::open("s".into(), vec![spec("lazy", step_type, "")], true) {
            Err(Refused::Steps(error)) => error,
            _ => panic!("{step_type} opened"),
        };
        assert_eq!(refused("hosted_segments.Timed"), "step 'lazy' declares timers, but has no on_timer(timestamp, domain) to handle their firings");

        let mut late = timed(vec![spec("late", "hosted_segments.TimersLate", "")]);
        let error = session_error(keyed_record(&mut late, "a", "x", &mut Vec::new()));
        assert!(error.contains("RuntimeError: timers() is called while no step is being built: a step declares its timers in its class's __init__"), "{error}");

        let mut once = timed(vec![spec("once", "hosted_segments.TimersOnce", "")]);
        let error = session_error(keyed_record(&mut once, "a", "x", &mut Vec::new()));
        assert!(error.contains("step 'once' sets timers when first built but not when built again: a step must declare its timers every time"), "{error}");

        let mut checked = timed(vec![spec("marks", "hosted_segments.TimersOnWatermark", "")]);
        let error = session_error(fire(&mut checked, "a", firing(0, TimeDomain::ProcessingTime, 5), &mut Vec::new()));
        assert!(error.contains("on_timer() returned a str without payload, not a message"), "{error}");
    }

    #[test]
    fn a_python_steps_current_key_is_the_key_of_the_record_or_firing_it_handles_as_bytes_and_none_outside_one() {
        start_runtime();
        let mut session = timed(vec![spec("keys", "hosted_segments.TimedKeyEcho", "")]);
        let mut out = Vec::new();
        keyed_record(&mut session, "a", "x", &mut out).unwrap();
        session.serve(Input::Record(Some(2), Some(b"\xff\x00".to_vec()), record("y", "")), &mut out).unwrap();
        fire(&mut session, "b", firing(0, TimeDomain::EventTime, 5), &mut out).unwrap();
        assert_eq!(out.last().unwrap().headers.get("user").map(String::as_str), Some("b"), "the documented on_timer's current_key().decode()");
        session.serve(Input::Watermark(6), &mut out).unwrap();
        assert_eq!(payloads(&out), ["record b'a'", r"record b'\xff\x00'", "timer b'b'", "watermark None", "watermark None"], "a watermark reaches both key groups' instances");

        // A session that is not keyed has no key to give.
        let mut unkeyed = Session::new("s".into(), vec![spec("keys", "hosted_segments.KeyEcho", "")]).unwrap();
        out.clear();
        unkeyed.serve(Input::Record(Some(1), None, record("z", "c")), &mut out).unwrap();
        unkeyed.serve(Input::Watermark(7), &mut out).unwrap();
        assert_eq!(payloads(&out), ["record None", "watermark None"]);
    }
}
