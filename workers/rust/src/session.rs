//! One session's logic, fed strictly in order whatever the transport: every input gets its outputs and an end
//! of outputs, or an error. After an error the session refuses further input, since the bridge fails the task
//! and Flink restarts from the last checkpoint.
//!
//! A session keeps one instance of its segment per Flink key group it has seen (one in all when the stream is
//! not keyed), so each instance's state is exactly its key group's and a rescale moves it with the keys.

use std::collections::BTreeMap;

use crate::{catalog, log};
use crate::record::Record;
use crate::step::{write_bytes, StateReader, Step, StepContext, StepError};

/// A step as `OpenSession` describes it.
#[derive(Clone, Debug)]
pub struct StepSpec {
    pub name: String,
    pub step_type: String,
    pub config_json: String,
}

/// A key group, or None for a stream that is not keyed.
pub type KeyGroup = Option<u32>;

pub enum Input {
    Record(KeyGroup, Record),
    Watermark(i64),
    Barrier,
    Clock(i64),
}

/// The steps of one segment run as one: the outputs of step k are the inputs of step k+1, and a watermark
/// passes the steps in order, so what step k emits on it reaches step k+1 before the watermark does.
struct Chain {
    steps: Vec<Box<dyn Step>>,
    names: Vec<(String, String)>,
}

impl Chain {
    fn build(specs: &[StepSpec]) -> Result<Chain, String> {
        if specs.is_empty() {
            return Err("a segment needs at least one step".into());
        }
        let steps = specs.iter().map(|s| catalog::build(&s.name, &s.step_type, &s.config_json)).collect::<Result<_, _>>()?;
        Ok(Chain { steps, names: specs.iter().map(|s| (s.name.clone(), s.step_type.clone())).collect() })
    }

    fn failed(&self, index: usize, error: impl std::fmt::Display) -> String {
        let (name, step_type) = &self.names[index];
        format!("step '{name}' ({step_type}) failed: {error}")
    }

    fn process(&mut self, record: Record, context: &StepContext, out: &mut Vec<Record>) -> Result<(), String> {
        run_from(&mut self.steps, 0, record, context, out).map_err(|(index, e)| self.failed(index, e))
    }

    fn on_watermark(&mut self, timestamp: i64, context: &StepContext, out: &mut Vec<Record>) -> Result<(), String> {
        for index in 0..self.steps.len() {
            let (this, rest) = self.steps[index..].split_first_mut().expect("index < len");
            let mut failure = None;
            let result = this.on_watermark(timestamp, context, &mut |record| {
                if failure.is_none() {
                    failure = run_from(rest, index + 1, record, context, out).err();
                }
            });
            if let Some((at, e)) = result.err().map(|e| (index, e)).or(failure) {
                return Err(self.failed(at, e));
            }
        }
        Ok(())
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
}

impl Session {
    /// Builds the steps once now, so that invalid steps refuse the session; instances come per key group later.
    pub fn new(name: String, specs: Vec<StepSpec>) -> Result<Session, String> {
        Chain::build(&specs)?;
        Ok(Session { name, specs, instances: BTreeMap::new(), context: StepContext { clock: None }, failure: None, closed: false })
    }

    fn instance(&mut self, key_group: KeyGroup) -> Result<&mut Chain, String> {
        if !self.instances.contains_key(&key_group) {
            self.instances.insert(key_group, Chain::build(&self.specs)?);
        }
        Ok(self.instances.get_mut(&key_group).expect("inserted"))
    }

    /// Serves one input: its outputs go to `out`; Err is the text of the ERROR frame that answers it.
    pub fn serve(&mut self, input: Input, out: &mut Vec<Record>) -> Result<(), String> {
        if self.closed {
            return Err("session closed".into());
        }
        if let Some(failure) = &self.failure {
            return Err(format!("session already failed: {failure}"));
        }
        let result = match input {
            Input::Record(key_group, record) => {
                let context = StepContext { clock: self.context.clock };
                self.instance(key_group).and_then(|chain| chain.process(record, &context, out))
            }
            Input::Watermark(timestamp) => {
                let context = &self.context;
                self.instances.values_mut().try_for_each(|chain| chain.on_watermark(timestamp, context, out))
            }
            Input::Barrier => Ok(()),
            Input::Clock(millis) => {
                self.context.clock = Some(millis);
                Ok(())
            }
        };
        result.map_err(|e| {
            out.clear();
            self.failure = Some(e.clone());
            let text = format!("{}: {e}", self.name);
            // Its whole text, logged here once: the data plane cuts the ERROR it answers with to what the bridge takes.
            log!("an input failed: {text}");
            text
        })
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
            self.instance(key_group)?.restore_state(&state).map_err(|e| format!("key group {}: {e}", describe_key_group(key_group)))?;
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
mod tests {
    use super::*;

    fn spec(name: &str, step_type: &str, config: &str) -> StepSpec {
        StepSpec { name: name.into(), step_type: step_type.into(), config_json: config.into() }
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
        session.serve(Input::Record(Some(3), record("{\"a\":true}", "one")), &mut out).unwrap();
        assert_eq!(String::from_utf8(out[0].payload.clone()).unwrap(), r#"{"key":"1","count":1}"#);
        assert_eq!(out[0].timestamp, 7);
    }

    #[test]
    fn state_is_per_key_group_and_restores_into_a_new_session() {
        let steps = vec![spec("c", "running_count", r#"{"key_header":"k"}"#)];
        let mut first = Session::new("s".into(), steps.clone()).unwrap();
        let mut out = Vec::new();
        for (kg, key) in [(1, "a"), (2, "b"), (1, "a")] {
            first.serve(Input::Record(Some(kg), record("{}", key)), &mut out).unwrap();
        }
        let states: BTreeMap<_, _> = first.snapshot().unwrap().into_iter().collect();
        assert_eq!(states.keys().copied().collect::<Vec<_>>(), vec![Some(1), Some(2)]);
        let mut second = Session::new("s".into(), steps).unwrap();
        second.restore(states).unwrap();
        out.clear();
        second.serve(Input::Record(Some(1), record("{}", "a")), &mut out).unwrap();
        assert_eq!(out[0].payload, br#"{"key":"a","count":3}"#);
    }

    #[test]
    fn a_failed_step_fails_the_session_naming_the_step() {
        let mut session = Session::new("s".into(), vec![spec("add", "append_field", "{}")]).unwrap();
        let mut out = Vec::new();
        let error = session.serve(Input::Record(None, record("not json", "a")), &mut out).unwrap_err();
        assert!(error.contains("step 'add' (append_field) failed"), "{error}");
        let later = session.serve(Input::Barrier, &mut out).unwrap_err();
        assert!(later.contains("session already failed"), "{later}");
    }

    #[test]
    fn a_batch_closes_on_the_stamped_clock_only() {
        let mut session = Session::new("s".into(), vec![spec("b", "batch", r#"{"max_wait_ms":10}"#)]).unwrap();
        let mut out = Vec::new();
        session.serve(Input::Clock(1000), &mut out).unwrap();
        session.serve(Input::Record(None, record("1", "a")), &mut out).unwrap();
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
}
