//! What a step is to the session that runs it, whichever code implements it (built in, steps.rs; in Python,
//! python.rs): the step trait, the context it is called with, and the state encoding that the steps' states and
//! a segment's (session.rs) are written in.

use std::borrow::Cow;
use std::fmt;

use crate::record::Record;

/// 2: strings as an int length and UTF-8 bytes, as the Java worker's StateStrings writes them.
pub const STATE_VERSION: u8 = 2;

/// What a step may ask of its session: processing time is the bridge's (the session's last CLOCK input), so a
/// replay gives a step the times of the first run.
pub struct StepContext {
    pub clock: Option<i64>,
}

impl StepContext {
    pub fn current_time_millis(&self) -> i64 {
        self.clock.unwrap_or_else(crate::ring::now_millis)
    }
}

pub type Emit<'a> = dyn FnMut(Record) + 'a;

/// The class of a native step's error (Rust has none of its own), as INPUT_FAILED names it.
pub const NATIVE_ERROR: &str = "flink_bridge_worker::StepError";

/// Why a step failed on an input: its class is what an INPUT_FAILED answer names beside the message
/// (docs/protocol.md, "Failed inputs"), and what a recovery in place expects the replayed input to fail with again.
#[derive(Debug)]
pub struct StepError {
    /// A Python exception's class, qualified with its module unless a builtin; NATIVE_ERROR for a native step's.
    pub class: Cow<'static, str>,
    pub message: String,
}

impl From<String> for StepError {
    fn from(message: String) -> Self {
        StepError { class: Cow::Borrowed(NATIVE_ERROR), message }
    }
}

impl From<&str> for StepError {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

/// As an ERROR names it: a native step's message alone (it names the step), an exception as Python prints one.
impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.class == NATIVE_ERROR {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.class, self.message)
        }
    }
}

/// The time a timer runs on (docs/protocol.md, "Timers"): event time fires once a watermark reaches its timestamp,
/// processing time once the bridge's clock does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeDomain {
    EventTime,
    ProcessingTime,
}

impl TimeDomain {
    /// "event-time" or "processing-time", as error texts name a timer's domain.
    pub fn name(self) -> &'static str {
        match self {
            TimeDomain::EventTime => "event-time",
            TimeDomain::ProcessingTime => "processing-time",
        }
    }
}

/// One step of a segment. Called from one thread at a time, strictly in input order. `on_watermark(i64::MAX)` is
/// the end of input: emit whatever is held.
pub trait Step: Send {
    fn process(&mut self, record: Record, context: &StepContext, emit: &mut Emit) -> Result<(), StepError>;

    /// A timer this step set for the current key fires (a step that sets timers declares them with
    /// `BuildContext::timers` and implements this): the key's cells and timers are reachable, and what it emits goes
    /// through the steps after it. An error fails the session, whatever the step's `on_error`.
    fn on_timer(&mut self, timestamp: i64, domain: TimeDomain, _context: &StepContext, _emit: &mut Emit) -> Result<(), StepError> {
        Err(format!("its {} timer at {timestamp} fired, but the step has no on_timer", domain.name()).into())
    }

    fn on_watermark(&mut self, _timestamp: i64, _context: &StepContext, _emit: &mut Emit) -> Result<(), StepError> {
        Ok(())
    }

    /// Empty when the step holds nothing.
    fn snapshot_state(&self) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }

    fn restore_state(&mut self, _state: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn checkpoint_finished(&mut self, _checkpoint_id: i64, _completed: bool) {}
}

/// A byte string behind its length (a big-endian int), as `StateReader::bytes` reads it.
pub fn write_bytes(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(&(value.len() as i32).to_be_bytes());
    out.extend_from_slice(value);
}

/// Reads a state encoding, refusing a length that runs past the bytes left.
pub struct StateReader<'a> {
    state: &'a [u8],
    at: usize,
    what: &'a str,
}

impl<'a> StateReader<'a> {
    pub fn new(state: &'a [u8], what: &'a str) -> Self {
        StateReader { state, at: 0, what }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        if count > self.remaining() {
            return Err(format!("{} state ends early", self.what));
        }
        self.at += count;
        Ok(&self.state[self.at - count..self.at])
    }

    pub fn version(&mut self) -> Result<(), String> {
        let version = self.take(1)?[0];
        if version != STATE_VERSION {
            return Err(format!("{} state version {version} is not {STATE_VERSION}", self.what));
        }
        Ok(())
    }

    pub fn int(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    pub fn long(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        let length = self.int()?;
        if length < 0 || length as usize > self.remaining() {
            return Err(format!("a {what} of {length} bytes with {} left", self.remaining()));
        }
        self.take(length as usize)
    }

    pub fn string(&mut self) -> Result<String, String> {
        Ok(String::from_utf8_lossy(self.bytes("string")?).into_owned())
    }

    pub fn remaining(&self) -> usize {
        self.state.len() - self.at
    }
}
