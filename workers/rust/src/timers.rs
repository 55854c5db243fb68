//! Timers: a step sets or deletes event-time and processing-time timers for the key of the input it handles, and the
//! bridge holds them in Flink's timer service (docs/protocol.md, "Timers"). A step declares that it uses timers when
//! it is built (`BuildContext::timers`, cells.rs), which makes `OpenSessionResponse.timers` true; while the session
//! handles a keyed record or a firing its handle (`TimerService`) records each change, and the input's answer carries
//! them, in order, as one `TIMERS` frame before its end marker. Used at any other time, it fails naming its step.
//!
//! One store per session, shared by every handle its steps hold (of every key group's instance).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::proto::{self, TimerChange, TimerChanges, TimerOp};
use crate::step::{StepError, TimeDomain};

impl TimeDomain {
    pub fn to_proto(self) -> proto::TimeDomain {
        match self {
            TimeDomain::EventTime => proto::TimeDomain::EventTime,
            TimeDomain::ProcessingTime => proto::TimeDomain::ProcessingTime,
        }
    }

    /// The domain a `TimerFiring` or `TimerChange` names; None for an unspecified or unknown one.
    pub fn from_proto(domain: i32) -> Option<TimeDomain> {
        match proto::TimeDomain::from_i32(domain)? {
            proto::TimeDomain::EventTime => Some(TimeDomain::EventTime),
            proto::TimeDomain::ProcessingTime => Some(TimeDomain::ProcessingTime),
            proto::TimeDomain::Unspecified => None,
        }
    }
}

/// Why a step's use of its timers failed: it names the step. A step's `?` makes it the step's error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerError(pub String);

impl std::fmt::Display for TimerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TimerError {}

impl From<TimerError> for StepError {
    fn from(error: TimerError) -> StepError {
        error.0.into()
    }
}

#[derive(Default)]
struct Store {
    /// The steps that declared timers (their indexes in the session's StepSpec list), in order, each once.
    declared: Vec<(u32, String)>,
    /// The first build of the session's steps is over: a later build declares the timers of the same steps.
    fixed: bool,
    /// The steps that declared timers in the build under way.
    built: Vec<u32>,
    /// A keyed record or a firing is being handled: its steps may set and delete timers of its key.
    active: bool,
    /// The changes the input being handled made, in order; kept (with its capacity) from input to input.
    changes: Vec<TimerChange>,
}

/// A session's timers: which steps set them, and the changes of the input being handled. Cloning shares them.
#[derive(Clone, Default)]
pub struct Timers {
    store: Arc<Mutex<Store>>,
}

impl Timers {
    pub fn new() -> Timers {
        Timers::default()
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // No step code runs while it is held.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The steps that declared timers, by index and name.
    pub fn declared(&self) -> Vec<(u32, String)> {
        self.lock().declared.clone()
    }

    pub fn any_declared(&self) -> bool {
        !self.lock().declared.is_empty()
    }

    pub fn is_declared(&self, step: u32) -> bool {
        self.lock().declared.iter().any(|(index, _)| *index == step)
    }

    /// The steps of an instance are built from now on.
    pub fn begin_build(&self) {
        self.lock().built.clear();
    }

    /// The steps of an instance are built: a later build must declare the timers of exactly the steps the first did.
    pub fn end_build(&self) -> Result<(), String> {
        let mut store = self.lock();
        if store.fixed {
            if let Some((_, step)) = store.declared.iter().find(|(index, _)| !store.built.contains(index)) {
                return Err(format!("step '{step}' sets timers when first built but not when built again: a step must declare its timers every time"));
            }
        }
        store.fixed = true;
        Ok(())
    }

    /// Step `index` (named `step`) uses timers: its handle.
    pub fn declare(&self, step: &str, index: u32) -> Result<TimerService, String> {
        let mut store = self.lock();
        if !store.declared.iter().any(|(i, _)| *i == index) {
            if store.fixed {
                return Err(format!("step '{step}' sets timers when built again but not when first built: a step must declare its timers every time"));
            }
            store.declared.push((index, step.to_string()));
        }
        if !store.built.contains(&index) {
            store.built.push(index);
        }
        Ok(TimerService { timers: self.clone(), step: index, name: step.to_string() })
    }

    /// A keyed record or a firing is handled from now on: the steps' changes are its own (any left of an earlier
    /// input dropped).
    pub fn enter(&self) {
        let mut store = self.lock();
        store.changes.clear();
        store.active = true;
    }

    /// The input is handled: no timer can be set until the next.
    pub fn leave(&self) {
        self.lock().active = false;
    }

    /// Drops the changes of the input just handled (it failed: it changes no timer).
    pub fn drop_changes(&self) {
        self.lock().changes.clear();
    }

    /// The changes of the input just handled, in the order the steps made them; None when it made none.
    pub fn take_changes(&self) -> Option<TimerChanges> {
        let mut store = self.lock();
        if store.changes.is_empty() {
            return None;
        }
        Some(TimerChanges { changes: store.changes.drain(..).collect() })
    }

    /// Whether a keyed record or a firing is being handled, so that a step may set and delete timers.
    fn active(&self) -> bool {
        self.lock().active
    }

    fn change(&self, step: u32, name: &str, op: TimerOp, domain: TimeDomain, timestamp: i64) -> Result<(), TimerError> {
        let mut store = self.lock();
        if !store.active {
            let what = match op {
                TimerOp::Delete => "delete",
                _ => "set",
            };
            return Err(TimerError(format!(
                "step '{name}': {what} {} timer at {timestamp} outside the handling of a keyed record or a firing: a timer belongs to the key of the input being handled, so it is set or deleted only then (not when the step is built, on a watermark or at a checkpoint)",
                article(domain)
            )));
        }
        store.changes.push(TimerChange { op: op as i32, step, domain: domain.to_proto() as i32, timestamp });
        Ok(())
    }
}

/// "an event-time" or "a processing-time".
fn article(domain: TimeDomain) -> String {
    match domain {
        TimeDomain::EventTime => format!("an {}", domain.name()),
        TimeDomain::ProcessingTime => format!("a {}", domain.name()),
    }
}

/// A step's timers: set and delete timers of the key of the input being handled. Setting one already set changes
/// nothing, and deleting one not set is no error (the bridge's timer service sees to both).
#[derive(Clone)]
pub struct TimerService {
    timers: Timers,
    step: u32,
    name: String,
}

// The API of native steps: the built-in window step sets event-time timers only.
#[allow(dead_code)]
impl TimerService {
    /// The step's index in the session's StepSpec list.
    pub fn step(&self) -> u32 {
        self.step
    }

    /// Whether a timer can be set or deleted now: a keyed record or a firing is being handled.
    pub fn usable(&self) -> bool {
        self.timers.active()
    }

    pub fn set(&self, domain: TimeDomain, timestamp: i64) -> Result<(), TimerError> {
        self.timers.change(self.step, &self.name, TimerOp::Set, domain, timestamp)
    }

    pub fn delete(&self, domain: TimeDomain, timestamp: i64) -> Result<(), TimerError> {
        self.timers.change(self.step, &self.name, TimerOp::Delete, domain, timestamp)
    }

    /// A timer that fires once the watermark reaches `timestamp`.
    pub fn set_event_time(&self, timestamp: i64) -> Result<(), TimerError> {
        self.set(TimeDomain::EventTime, timestamp)
    }

    /// A timer that fires once the bridge's clock reaches `timestamp`.
    pub fn set_processing_time(&self, timestamp: i64) -> Result<(), TimerError> {
        self.set(TimeDomain::ProcessingTime, timestamp)
    }

    pub fn delete_event_time(&self, timestamp: i64) -> Result<(), TimerError> {
        self.delete(TimeDomain::EventTime, timestamp)
    }

    pub fn delete_processing_time(&self, timestamp: i64) -> Result<(), TimerError> {
        self.delete(TimeDomain::ProcessingTime, timestamp)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The changes as (op, step, domain, timestamp), readable in assertions.
    pub(crate) fn changes(timers: &TimerChanges) -> Vec<(TimerOp, u32, TimeDomain, i64)> {
        timers.changes.iter().map(|c| (TimerOp::from_i32(c.op).unwrap(), c.step, TimeDomain::from_proto(c.domain).unwrap(), c.timestamp)).collect()
    }

    #[test]
    fn changes_are_taken_in_order_only_while_an_input_is_handled() {
        let timers = Timers::new();
        let service = timers.declare("w", 2).unwrap();
        assert_eq!(timers.declared(), [(2, "w".to_string())]);
        let error = service.set_event_time(5).unwrap_err().0;
        assert!(error.starts_with("step 'w': set an event-time timer at 5 outside the handling of a keyed record or a firing"), "{error}");
        timers.enter();
        service.set_event_time(5).unwrap();
        service.delete_processing_time(7).unwrap();
        timers.leave();
        assert!(service.delete_event_time(5).is_err());
        let taken = timers.take_changes().unwrap();
        assert_eq!(changes(&taken), [(TimerOp::Set, 2, TimeDomain::EventTime, 5), (TimerOp::Delete, 2, TimeDomain::ProcessingTime, 7)]);
        assert!(timers.take_changes().is_none());

        timers.enter();
        service.set_processing_time(1).unwrap();
        timers.leave();
        timers.drop_changes();
        assert!(timers.take_changes().is_none(), "a failed input's changes are dropped");
    }

    #[test]
    fn a_later_build_declares_the_timers_of_the_same_steps() {
        let timers = Timers::new();
        let build = |steps: &[(&str, u32)]| {
            timers.begin_build();
            steps.iter().try_for_each(|(step, index)| timers.declare(step, *index).map(drop))?;
            timers.end_build()
        };
        build(&[("a", 0)]).unwrap();
        build(&[("a", 0)]).unwrap();
        assert_eq!(timers.declared().len(), 1);
        assert_eq!(build(&[("a", 0), ("b", 1)]).unwrap_err(), "step 'b' sets timers when built again but not when first built: a step must declare its timers every time");
        assert_eq!(build(&[]).unwrap_err(), "step 'a' sets timers when first built but not when built again: a step must declare its timers every time");
    }

    #[test]
    fn domains_go_to_and_from_the_wire() {
        for domain in [TimeDomain::EventTime, TimeDomain::ProcessingTime] {
            assert_eq!(TimeDomain::from_proto(domain.to_proto() as i32), Some(domain));
        }
        assert_eq!(TimeDomain::from_proto(0), None);
        assert_eq!(TimeDomain::from_proto(9), None);
    }
}
