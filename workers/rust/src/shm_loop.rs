//! Serves one shm session on a thread of its own: reads the to-worker ring in order, feeds the session, and
//! writes each input's outputs and end marker (or error, or failed input) into the from-worker ring, published
//! once per polled batch. When the bridge sends nothing it sleeps on the ring's futex, waking every 100 ms to
//! check that the bridge is still there.
//!
//! In a keyed session a RECORD's body starts with its key; LOAD frames (a KeyCells message each) go into the
//! session unanswered, as part of the record that follows; a BARRIER (its checkpoint id, then the keys to evict) is
//! answered with the cells changed since the last (CELL_WRITES frames, each at most what a frame holds), then its end
//! marker, and the keys it names are dropped.
//!
//! A TIMER's body is its key (as a keyed RECORD's), then a TimerFiring message; a RECORD or TIMER whose steps set or
//! deleted timers is answered with its OUTPUTs, one TIMERS frame (a TimerChanges message), then its end marker.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use prost::Message;

use crate::error_text;
use crate::layout as l;
use crate::proto::{KeyCells, TimerChanges, TimerFiring};
use crate::record::{self, Record};
use crate::registry::{why_panicked, Registry, SessionHandle};
use crate::ring::{Consumer, Frame, Producer, RingError, RingFile};
use crate::session::{FailedInput, Failure, Input};
use crate::log;

/// Frames taken per poll: answers are published after each batch, so the first answers of a long queue do not
/// wait for all of it.
const BATCH_FRAMES: usize = 32;
const IDLE_WAIT: Duration = Duration::from_millis(100);

pub fn start(registry: Arc<Registry>, handle: Arc<SessionHandle>, ring: Arc<RingFile>, liveness_timeout_ms: i64) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("session-{}", &handle.id[handle.id.len() - 8..]))
        .spawn(move || {
            crate::python::attach_this_thread();
            ShmLoop::new(handle, ring, liveness_timeout_ms).run(&registry);
            crate::python::detach_this_thread();
        })
        .expect("starting a session's thread")
}

struct ShmLoop {
    handle: Arc<SessionHandle>,
    ring: Arc<RingFile>,
    liveness_timeout_ms: i64,
    outputs: Vec<Record>,
    /// Whether the session has a dead-letter step, asked once: only then are a record's outputs checked to fit a frame
    /// before any is written.
    dead_letters: bool,
    /// Whether the session is keyed: its records' bodies start with their keys.
    keyed: bool,
}

impl ShmLoop {
    fn new(handle: Arc<SessionHandle>, ring: Arc<RingFile>, liveness_timeout_ms: i64) -> ShmLoop {
        // Outside run's catch of panics: a lock a panic poisoned still holds the steps' specs, and serving then
        // ends the session as any panic does.
        let (dead_letters, keyed) = {
            let logic = handle.logic.lock().unwrap_or_else(PoisonError::into_inner);
            (logic.has_dead_letter_step(), logic.keyed())
        };
        ShmLoop { handle, ring, liveness_timeout_ms, outputs: Vec::new(), dead_letters, keyed }
    }

    fn closing(&self) -> bool {
        self.handle.closing.load(Ordering::Acquire)
    }

    /// Serves until the bridge closes the ring or is lost, the session is closed, the worker is asked to stop, the
    /// ring is corrupt, or serving panics; then closes the ring (removing the file of a bridge that crashed).
    fn run(mut self, registry: &Registry) {
        let heartbeat = self.ring.start_heartbeat();
        let mut inputs = self.ring.consumer();
        let mut answers = self.ring.producer();
        // A panic (a step's, or at a lock another panic poisoned) ends this session as a corrupt ring does: its ring
        // closed and its heartbeat stopped, so that the bridge sees it lost, while the worker serves the others.
        let served = panic::catch_unwind(AssertUnwindSafe(|| self.serve(&mut inputs, &mut answers)));
        let (why, as_asked) = match served {
            Ok(Ok(why)) => (why, true),
            Ok(Err(e)) => (format!("the ring failed: {e}"), false),
            Err(panic) => (why_panicked(panic.as_ref()), false),
        };
        answers.publish();
        let abandoned = !self.closing() && self.ring.bridge_crashed(self.liveness_timeout_ms);
        // Stopped only when serving ended as asked, every input it read answered.
        let stopped = as_asked && self.handle.stop_asked.load(Ordering::Acquire) && !self.closing();
        self.ring.close(stopped);
        let _ = heartbeat.join();
        if abandoned && std::fs::remove_file(&self.ring.path).is_ok() {
            log!("{}: removed the ring file {} its lost bridge left", self.handle.name, self.ring.path.display());
        }
        if stopped {
            log!("{}: stopped as asked, every input it read answered", self.handle.name);
        } else if !self.closing() {
            registry.end(&self.handle.id, &why);
        }
        self.handle.ended.store(true, Ordering::Release);
    }

    /// Why serving ended, or the ring's error.
    fn serve(&mut self, inputs: &mut Consumer, answers: &mut Producer) -> Result<String, RingError> {
        while !self.closing() && !self.handle.stop_asked.load(Ordering::Acquire) {
            if inputs.poll(BATCH_FRAMES, |inputs, frame| self.on_frame(inputs, answers, frame))? > 0 {
                answers.publish();
                continue;
            }
            inputs.await_frames(IDLE_WAIT);
            if !inputs.has_frames() {
                if let Some(lost) = self.ring.bridge_lost(self.liveness_timeout_ms) {
                    return Ok(lost);
                }
            }
        }
        Ok("closed".into())
    }

    fn on_frame(&mut self, inputs: &mut Consumer, answers: &mut Producer, frame: Frame<'_>) -> Result<(), RingError> {
        let corrupt = |e: String| RingError(format!("{}: input #{}: {e}", inputs.name(), frame.sequence));
        let input = match frame.frame_type {
            l::RECORD => {
                let (key, body) = match self.keyed {
                    true => record::split_key(frame.body).map(|(key, body)| (Some(key), body)).map_err(corrupt)?,
                    false => (None, frame.body),
                };
                let record = record::decode(body).map_err(corrupt)?;
                Input::Record((frame.flags != l::NO_KEY_GROUP).then_some(frame.flags as u32), key, record)
            }
            l::TIMER => {
                let (key, body) = record::split_key(frame.body).map_err(corrupt)?;
                let firing = TimerFiring::decode(body).map_err(|e| corrupt(format!("a TIMER whose body after its key is no TimerFiring message: {e}")))?;
                Input::Timer((frame.flags != l::NO_KEY_GROUP).then_some(frame.flags as u32), key, firing)
            }
            l::LOAD => {
                let cells = KeyCells::decode(frame.body).map_err(|e| corrupt(format!("a LOAD whose body is no KeyCells message: {e}")))?;
                // Part of the record input that follows, answered with it: a LOAD the session refuses fails the session,
                // and that record is answered with the error.
                let _ = self.handle.logic.lock().unwrap().serve(Input::Load(frame.sequence, cells), &mut Vec::new());
                return Ok(());
            }
            l::WATERMARK => Input::Watermark(self.long_body(&frame)?),
            l::BARRIER => Input::Barrier(record::split_barrier(frame.body).map_err(corrupt)?.1),
            l::CLOCK => Input::Clock(self.long_body(&frame)?),
            other => {
                return Err(RingError(format!(
                    "{}: the bridge sent a {} frame (input #{}), which a bridge never sends",
                    self.handle.name, l::frame_name(other), frame.sequence
                )))
            }
        };
        let mut outputs = std::mem::take(&mut self.outputs);
        let sequence = frame.sequence;
        let served = self.feed(input, sequence, &mut outputs, answers.max_body());
        let result = match served {
            Ok(Served { writes, timers }) => writes
                .iter()
                .try_for_each(|cells| self.write_message(inputs, answers, l::CELL_WRITES, sequence, cells))
                .and_then(|_| {
                    outputs.iter().try_for_each(|output| {
                        self.write(inputs, answers, l::OUTPUT, sequence, record::encoded_length(output), |body| record::encode_into(output, body))
                    })
                })
                .and_then(|_| timers.iter().try_for_each(|timers| self.write_message(inputs, answers, l::TIMERS, sequence, timers)))
                .and_then(|_| self.write(inputs, answers, l::END_OF_OUTPUTS, sequence, 0, |_| {})),
            Err(Failure::Input(failed)) => self.write_failed(inputs, answers, sequence, &failed),
            Err(Failure::Session(text)) => {
                // Cut to what the bridge takes and one frame holds (docs/protocol.md, "Error texts").
                let text = error_text::cut(&text, error_text::MAX_BYTES.min(answers.max_body()));
                self.write(inputs, answers, l::ERROR, sequence, text.len(), |body| body.copy_from_slice(text.as_bytes()))
            }
        };
        outputs.clear();
        self.outputs = outputs;
        result
    }

    /// Serves `input` into `outputs`; a barrier's answer also has the cells changed since the last, each KeyCells
    /// within a frame, and a record's or firing's the timers its steps changed, within a frame (else the session
    /// fails). With a dead-letter step, a record one of whose outputs no frame holds is a failed input, found before
    /// any output is written, as a failed input sends none.
    fn feed(&self, input: Input, sequence: u64, outputs: &mut Vec<Record>, max_body: usize) -> Result<Served, Failure> {
        let checked = self.dead_letters && matches!(input, Input::Record(..));
        let barrier = matches!(input, Input::Barrier(_));
        let changes_timers = matches!(input, Input::Record(..) | Input::Timer(..));
        let mut logic = self.handle.logic.lock().unwrap();
        logic.serve(input, outputs)?;
        if barrier {
            return Ok(Served { writes: logic.cell_writes(max_body, max_body)?, timers: None });
        }
        if checked {
            if let Some(length) = outputs.iter().map(record::encoded_length).find(|&length| length > max_body) {
                return Err(Failure::Input(logic.output_unsendable(format!(
                    "an output of {length} bytes does not fit a frame of the ring, which holds at most {max_body}; give the session larger rings"
                ))));
            }
        }
        let timers = if changes_timers { logic.timer_changes() } else { None };
        if let Some(length) = timers.as_ref().map(Message::encoded_len).filter(|&length| length > max_body) {
            let why = format!("the timer changes of input #{sequence} take {length} bytes, more than a frame of the ring holds ({max_body}); give the session larger rings");
            logic.fail(&why);
            let text = format!("{}: {why}", self.handle.name);
            log!("an input failed: {text}");
            return Err(Failure::Session(text));
        }
        Ok(Served { writes: Vec::new(), timers })
    }

    /// Writes a message's encoding as one frame's body.
    fn write_message(&self, inputs: &mut Consumer, answers: &mut Producer, frame_type: u16, sequence: u64, message: &impl Message) -> Result<(), RingError> {
        self.write(inputs, answers, frame_type, sequence, message.encoded_len(), |mut body| message.encode(&mut body).expect("a body of the message's length"))
    }

    /// The i64 a WATERMARK or CLOCK frame carries, once its length is known to hold one.
    fn long_body(&self, frame: &Frame<'_>) -> Result<i64, RingError> {
        let bytes = frame.body.get(..8).ok_or_else(|| {
            RingError(format!("{}: a {} frame of {} body bytes (input #{})", self.handle.name, l::frame_name(frame.frame_type), frame.body.len(), frame.sequence))
        })?;
        Ok(i64::from_le_bytes(bytes.try_into().unwrap()))
    }

    /// INPUT_FAILED: the step, the error class and the message, each behind its i32 length, the message cut to what
    /// the frame holds besides.
    fn write_failed(&self, inputs: &mut Consumer, answers: &mut Producer, sequence: u64, failed: &FailedInput) -> Result<(), RingError> {
        let named = 12 + failed.step.len() + failed.error_class.len();
        let message = failed.cut_message(&self.handle.name, error_text::MAX_BYTES.min(answers.max_body().saturating_sub(named)));
        let fields = [failed.step.as_bytes(), failed.error_class.as_bytes(), message.as_bytes()];
        self.write(inputs, answers, l::INPUT_FAILED, sequence, named + message.len(), |body| {
            let mut at = 0;
            fields.iter().for_each(|field| record::put_field(body, &mut at, field));
        })
    }

    /// Writes one answer, waiting while the ring is full.
    fn write(&self, inputs: &mut Consumer, answers: &mut Producer, frame_type: u16, sequence: u64, length: usize, fill: impl Fn(&mut [u8])) -> Result<(), RingError> {
        while !answers.try_write(frame_type, sequence, length, &fill)? {
            // The bridge may itself wait for room for inputs: free what is handled and let it drain answers.
            inputs.release_handled();
            answers.await_space(IDLE_WAIT);
            let lost = self.ring.bridge_lost(self.liveness_timeout_ms).or_else(|| self.closing().then(|| "the session is closing".to_string()));
            if let Some(why) = lost {
                return Err(RingError(format!("{}: cannot answer input #{sequence}: {why}", self.handle.name)));
            }
        }
        Ok(())
    }
}

/// What an input is answered with besides its outputs: a barrier's cell writes, a record's or firing's timer changes.
struct Served {
    writes: Vec<KeyCells>,
    timers: Option<TimerChanges>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    use crate::error_text::tests::parts;
    use crate::python::tests::{start_runtime, LONG_MESSAGE_START};
    use crate::cells::tests::{content_value, load_of, ops, CELL_COUNTER_TYPE};
    use crate::proto::CellOp;
    use crate::registry::tests::{echo_session, open_keyed_session, open_session, poison};
    use crate::session::tests::spec;
    use crate::registry::Plane;
    use crate::ring::tests::{reader_of_answers, worker_heartbeat_and_closed, writer_of_inputs, Folder};
    use crate::session::tests::{dead_letter, echo_then_add, NOT_JSON};
    use crate::session::OUTPUT_TOO_LARGE;
    use crate::step::NATIVE_ERROR;

    /// A session of one echo step, served over a ring of its own by its loop, its bridge never silent.
    fn served(registry: &Arc<Registry>, folder: &Folder, id: &str) -> (Arc<SessionHandle>, Arc<RingFile>) {
        served_on_ring(registry, folder, echo_session(registry, id, Plane::Shm))
    }

    fn served_on_ring(registry: &Arc<Registry>, folder: &Folder, handle: Arc<SessionHandle>) -> (Arc<SessionHandle>, Arc<RingFile>) {
        let ring = folder.ring();
        *handle.thread.lock().unwrap() = Some(start(Arc::clone(registry), Arc::clone(&handle), Arc::clone(&ring), i64::MAX));
        (handle, ring)
    }

    /// Sends frames (type, sequence, body) as the bridge does.
    fn send(ring: &Arc<RingFile>, frames: &[(u16, u64, Vec<u8>)]) {
        let mut inputs = writer_of_inputs(ring);
        for (frame_type, sequence, body) in frames {
            assert!(inputs.try_write(*frame_type, *sequence, body.len(), |out| out.copy_from_slice(body)).unwrap(), "the ring is full");
        }
        inputs.publish();
    }

    /// A keyed session's RECORD body: the key behind its i32 length, then the record.
    fn keyed_record(key: &[u8], payload: &[u8]) -> Vec<u8> {
        let record = Record { payload: payload.to_vec(), ..Default::default() };
        let mut body = vec![0; 4 + key.len() + record::encoded_length(&record)];
        let mut at = 0;
        record::put_field(&mut body, &mut at, key);
        record::encode_into(&record, &mut body[at..]);
        body
    }

    /// Sends RECORD inputs, numbered from `first`, as the bridge does.
    fn send_records(ring: &Arc<RingFile>, first: u64, payloads: &[&[u8]]) {
        let mut inputs = writer_of_inputs(ring);
        for (sequence, payload) in (first..).zip(payloads) {
            let record = Record { payload: payload.to_vec(), ..Default::default() };
            assert!(inputs.try_write(l::RECORD, sequence, record::encoded_length(&record), |body| record::encode_into(&record, body)).unwrap());
        }
        inputs.publish();
    }

    /// The answers as the bridge takes them, up to the last one of input `last`: type, sequence and body.
    fn answers_through(ring: &Arc<RingFile>, last: u64) -> Vec<(u16, u64, Vec<u8>)> {
        let mut answers = reader_of_answers(ring);
        let mut taken = Vec::new();
        within(5, || {
            answers.poll(64, |_, frame| {
                taken.push((frame.frame_type, frame.sequence, frame.body.to_vec()));
                Ok::<_, RingError>(())
            }).unwrap();
            matches!(taken.last(), Some((t, s, _)) if *s == last && *t != l::OUTPUT)
        });
        taken
    }

    /// An INPUT_FAILED body's fields: step, error class, message.
    fn failure_fields(mut body: &[u8]) -> Vec<String> {
        let mut fields = Vec::new();
        while body.len() >= 4 {
            let length = i32::from_le_bytes(body[..4].try_into().unwrap()) as usize;
            fields.push(String::from_utf8(body[4..4 + length].to_vec()).unwrap());
            body = &body[4 + length..];
        }
        fields
    }

    fn send_barrier(ring: &Arc<RingFile>, sequence: u64) {
        send(ring, &[(l::BARRIER, sequence, barrier_body(sequence as i64, &[]))]);
    }

    /// A BARRIER's body: the checkpoint id, then each key to evict behind its i32 length.
    fn barrier_body(checkpoint_id: i64, evict: &[&[u8]]) -> Vec<u8> {
        let mut body = checkpoint_id.to_le_bytes().to_vec();
        for key in evict {
            body.extend((key.len() as i32).to_le_bytes());
            body.extend(*key);
        }
        body
    }

    fn within(seconds: u64, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        done()
    }

    #[test]
    fn a_panic_on_a_sessions_thread_ends_that_session_and_its_heartbeat_and_the_rest_serve_on() {
        a_panic_ends_its_session(false);
    }

    /// The lock a panic poisoned before the session's loop began: the loop reads the session's steps at its start,
    /// outside its catch of panics (a run under load once panicked there, and the ring stayed open).
    #[test]
    fn a_session_whose_logic_a_panic_poisoned_before_its_loop_began_ends_too() {
        a_panic_ends_its_session(true);
    }

    fn a_panic_ends_its_session(before_its_loop: bool) {
        let registry = Arc::new(Registry::new(false));
        let (panics_folder, serves_folder) = (Folder::new(), Folder::new());
        let panics = echo_session(&registry, "session-that-panics", Plane::Shm);
        if before_its_loop {
            poison(&panics);
        }
        let (panics, panics_ring) = served_on_ring(&registry, &panics_folder, panics);
        let (serves, serves_ring) = served(&registry, &serves_folder, "session-that-serves");
        if !before_its_loop {
            poison(&panics);
        }
        send_barrier(&panics_ring, 1);

        assert!(within(5, || worker_heartbeat_and_closed(&panics_ring).1 == l::CLOSED_LEFT), "the ring is not closed as left");
        // The ring is marked closed before the session's end stops its heartbeat: the beat is read once it ended.
        assert!(within(5, || panics.ended.load(Ordering::Acquire)), "the loop did not end");
        let beat = worker_heartbeat_and_closed(&panics_ring).0;
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(worker_heartbeat_and_closed(&panics_ring).0, beat, "the heartbeat beats on");
        assert!(!registry.sessions.lock().unwrap().contains_key("session-that-panics"), "the session is still open");

        send_barrier(&serves_ring, 7);
        assert_eq!(answers_through(&serves_ring, 7), [(l::END_OF_OUTPUTS, 7, vec![])], "the other session answers");
        serves.closing.store(true, Ordering::Release);
        serves.await_end();
    }

    #[test]
    fn a_record_that_fails_in_a_dead_letter_step_or_has_an_output_no_frame_holds_is_answered_input_failed_alone() {
        let registry = Arc::new(Registry::new(false));
        let folder = Folder::new();
        let (handle, ring) = served_on_ring(&registry, &folder, open_session(&registry, "dead-letters", Plane::Shm, echo_then_add()));
        // Fits a frame of the ring (4 KiB, frames of at most 2 KiB), while the same with "processed" added does not.
        let large = format!(r#"{{"a":"{}"}}"#, "x".repeat(2002));
        send_records(&ring, 1, &[br#"{"a":1}"#, b"not json", large.as_bytes(), br#"{"b":2}"#]);

        let answers = answers_through(&ring, 4);
        let kinds: Vec<_> = answers.iter().map(|(t, s, _)| (l::frame_name(*t), *s)).collect();
        let expected = [("OUTPUT", 1), ("END_OF_OUTPUTS", 1), ("INPUT_FAILED", 2), ("INPUT_FAILED", 3), ("OUTPUT", 4), ("END_OF_OUTPUTS", 4)];
        assert_eq!(kinds, expected.map(|(t, s)| (t.to_string(), s)));
        assert_eq!(record::decode(&answers[0].2).unwrap().payload, br#"{"a":1,"processed":true}"#);
        let not_json = failure_fields(&answers[2].2);
        assert_eq!((not_json[0].as_str(), not_json[1].as_str()), ("add", NATIVE_ERROR));
        assert!(not_json[2].starts_with(NOT_JSON), "{not_json:?}");
        let too_large = failure_fields(&answers[3].2);
        assert_eq!((too_large[0].as_str(), too_large[1].as_str()), ("add", OUTPUT_TOO_LARGE));
        assert!(too_large[2].starts_with("an output of 2043 bytes does not fit a frame of the ring"), "{too_large:?}");
        handle.closing.store(true, Ordering::Release);
        handle.await_end();
    }

    #[test]
    fn a_keyed_session_takes_records_with_their_keys_and_loads_and_answers_a_barrier_with_its_cell_writes_split_over_frames() {
        let registry = Arc::new(Registry::new(false));
        let folder = Folder::new();
        let counter = spec("count", CELL_COUNTER_TYPE, r#"{"list_seen": false}"#);
        let (handle, ring) = served_on_ring(&registry, &folder, open_keyed_session(&registry, "keyed-cells", Plane::Shm, vec![counter]));
        // Four payloads of 600 bytes: their entries' writes (over 2,400 bytes) do not fit one frame (2,032 bytes).
        let payloads: Vec<Vec<u8>> = (b'a'..=b'd').map(|c| vec![c; 600]).collect();
        let load = load_of(b"k\x00ey", vec![content_value(0, b"10")]).encode_to_vec();
        let mut frames = vec![(l::LOAD, 1, load)];
        frames.extend((1..).zip(&payloads).map(|(sequence, payload)| (l::RECORD, sequence, keyed_record(b"k\x00ey", payload))));
        send(&ring, &frames);
        let outputs = answers_through(&ring, 4);
        let kinds: Vec<_> = outputs.iter().map(|(t, s, _)| (l::frame_name(*t), *s)).collect();
        let expected: Vec<_> = (1..=4).flat_map(|s| [("OUTPUT".to_string(), s), ("END_OF_OUTPUTS".to_string(), s)]).collect();
        assert_eq!(kinds, expected, "a LOAD has no answer of its own");
        assert_eq!(record::decode(&outputs[6].2).unwrap().payload, b"total=14");

        send_barrier(&ring, 5);
        let answers = answers_through(&ring, 5);
        let (writes, end) = answers.split_at(answers.len() - 1);
        assert_eq!((end[0].0, end[0].1), (l::END_OF_OUTPUTS, 5));
        assert!(writes.len() > 1, "the writes are not split: {} frame(s)", writes.len());
        let max_body = l::max_frame_length(l::MIN_CAPACITY as usize) - l::FRAME_HEADER;
        let mut all = Vec::new();
        for (frame_type, sequence, body) in writes {
            assert_eq!((*frame_type, *sequence), (l::CELL_WRITES, 5));
            assert!(body.len() <= max_body, "a frame body of {} bytes", body.len());
            let key_cells = KeyCells::decode(&body[..]).unwrap();
            assert_eq!(&key_cells.key[..], b"k\x00ey");
            assert_eq!(key_cells.resident_bytes, 2 + 4 * (600 + 2), "every piece carries the key's resident_bytes");
            all.extend(ops(&key_cells));
        }
        let mut expected = vec![(0, CellOp::Set, Vec::new(), b"14".to_vec())];
        expected.extend((11..).zip(&payloads).map(|(total, payload)| (1, CellOp::Put, payload.clone(), total.to_string().into_bytes())));
        assert_eq!(all, expected);

        send_barrier(&ring, 6);
        assert_eq!(answers_through(&ring, 6), [(l::END_OF_OUTPUTS, 6, vec![])], "the cells are clean after a barrier");
        handle.closing.store(true, Ordering::Release);
        handle.await_end();
    }

    /// The KeyCells of a CELL_WRITES answer: key, resident_bytes and writes.
    fn cell_writes_of(answer: &(u16, u64, Vec<u8>)) -> (Vec<u8>, u64, Vec<(u32, CellOp, Vec<u8>, Vec<u8>)>) {
        assert_eq!(answer.0, l::CELL_WRITES);
        let key_cells = KeyCells::decode(&answer.2[..]).unwrap();
        (key_cells.key.to_vec(), key_cells.resident_bytes, ops(&key_cells))
    }

    #[test]
    fn a_barrier_evicts_the_keys_its_body_names_once_answered_and_such_a_keys_next_record_needs_a_load() {
        let registry = Arc::new(Registry::new(false));
        let folder = Folder::new();
        let counter = spec("count", CELL_COUNTER_TYPE, r#"{"list_seen": false}"#);
        let (handle, ring) = served_on_ring(&registry, &folder, open_keyed_session(&registry, "evicting", Plane::Shm, vec![counter]));
        let load = |total: &[u8]| load_of(b"user-1", vec![content_value(0, total)]).encode_to_vec();
        send(&ring, &[
            (l::LOAD, 1, load(b"10")),
            (l::RECORD, 1, keyed_record(b"user-1", b"x")),
            (l::BARRIER, 2, barrier_body(2, &[b"user-1", b"never loaded"])),
        ]);
        let answers = answers_through(&ring, 2);
        assert_eq!(record::decode(&answers[0].2).unwrap().payload, b"total=11");
        let (key, resident_bytes, writes) = cell_writes_of(&answers[2]);
        assert_eq!((key.as_slice(), resident_bytes), (&b"user-1"[..], 2 + 1 + 2));
        assert_eq!(writes[0], (0, CellOp::Set, Vec::new(), b"11".to_vec()));
        assert_eq!((answers[3].0, answers[3].1, answers.len()), (l::END_OF_OUTPUTS, 2, 4), "the barrier is answered as always");

        // Loaded again: served from what the LOAD carries.
        send(&ring, &[(l::LOAD, 3, load(b"20")), (l::RECORD, 3, keyed_record(b"user-1", b"y")), (l::BARRIER, 4, barrier_body(4, &[b"user-1"]))]);
        let answers = answers_through(&ring, 4);
        assert_eq!(record::decode(&answers[0].2).unwrap().payload, b"total=21");
        assert_eq!(cell_writes_of(&answers[2]).2[0], (0, CellOp::Set, Vec::new(), b"21".to_vec()));

        // Evicted again, and no LOAD before its record.
        send(&ring, &[(l::RECORD, 5, keyed_record(b"user-1", b"z"))]);
        let answers = answers_through(&ring, 5);
        assert_eq!(answers[0].0, l::ERROR);
        let error = String::from_utf8(answers[0].2.clone()).unwrap();
        assert!(error.contains("the record's key 'user-1' is not resident: no LOAD of it came in this session"), "{error}");
        handle.closing.store(true, Ordering::Release);
        handle.await_end();
    }

    #[test]
    fn a_barrier_whose_key_to_evict_runs_past_its_body_ends_the_session_naming_the_ring() {
        let registry = Arc::new(Registry::new(false));
        let folder = Folder::new();
        let counter = spec("count", CELL_COUNTER_TYPE, "");
        let (handle, ring) = served_on_ring(&registry, &folder, open_keyed_session(&registry, "corrupt-evict", Plane::Shm, vec![counter]));
        let mut body = barrier_body(1, &[b"fine"]);
        body.extend(100i32.to_le_bytes());
        body.extend(b"short");
        send(&ring, &[(l::BARRIER, 1, body)]);
        assert!(within(5, || handle.ended.load(Ordering::Acquire)), "the session goes on");
        assert_eq!(worker_heartbeat_and_closed(&ring).1, l::CLOSED_LEFT);
        assert!(!registry.sessions.lock().unwrap().contains_key("corrupt-evict"), "the session is still open");
    }

    #[test]
    fn a_record_whose_key_was_not_loaded_is_answered_with_an_error_naming_the_key() {
        let registry = Arc::new(Registry::new(false));
        let folder = Folder::new();
        let counter = spec("count", CELL_COUNTER_TYPE, "");
        let (handle, ring) = served_on_ring(&registry, &folder, open_keyed_session(&registry, "not-resident", Plane::Shm, vec![counter]));
        send(&ring, &[(l::RECORD, 1, keyed_record(b"user-7", b"x"))]);
        let answers = answers_through(&ring, 1);
        assert_eq!(answers[0].0, l::ERROR);
        let error = String::from_utf8(answers[0].2.clone()).unwrap();
        assert!(error.contains("the record's key 'user-7' is not resident: no LOAD of it came in this session"), "{error}");
        handle.closing.store(true, Ordering::Release);
        handle.await_end();
    }

    #[test]
    fn a_keyed_record_whose_key_runs_past_its_body_ends_the_session_naming_the_ring() {
        let registry = Arc::new(Registry::new(false));
        let folder = Folder::new();
        let echo = spec("echo", crate::steps::ECHO_TYPE, "");
        let (handle, ring) = served_on_ring(&registry, &folder, open_keyed_session(&registry, "corrupt-key", Plane::Shm, vec![echo]));
        send(&ring, &[(l::RECORD, 1, 100i32.to_le_bytes().to_vec())]);
        assert!(within(5, || handle.ended.load(Ordering::Acquire)), "the session goes on");
        assert_eq!(worker_heartbeat_and_closed(&ring).1, l::CLOSED_LEFT);
    }

    #[test]
    fn a_failed_inputs_long_message_is_cut_to_what_its_frame_holds() {
        start_runtime();
        let registry = Arc::new(Registry::new(false));
        let folder = Folder::new();
        let failing = dead_letter("failing", "hosted_segments.FailsOnRecord", "");
        let (handle, ring) = served_on_ring(&registry, &folder, open_session(&registry, "long-failure", Plane::Shm, vec![failing]));
        send_records(&ring, 1, &[b"{}"]);

        let answers = answers_through(&ring, 1);
        let fits = l::FRAME_HEADER + answers[0].2.len() <= l::max_frame_length(l::MIN_CAPACITY as usize);
        assert_eq!((answers[0].0, fits), (l::INPUT_FAILED, true), "{answers:?}");
        let fields = failure_fields(&answers[0].2);
        assert_eq!((fields[0].as_str(), fields[1].as_str()), ("failing", "RuntimeError"));
        let (start, _, _) = parts(&fields[2]).expect("the marker");
        assert!(start.starts_with(LONG_MESSAGE_START), "{start}");
        handle.closing.store(true, Ordering::Release);
        handle.await_end();
    }

    /// A TIMER's body: the key behind its i32 length, then the TimerFiring.
    fn timer_body(key: &[u8], step: u32, domain: crate::proto::TimeDomain, timestamp: i64) -> Vec<u8> {
        let mut body = (key.len() as i32).to_le_bytes().to_vec();
        body.extend(key);
        body.extend(TimerFiring { timestamp, step, domain: domain as i32 }.encode_to_vec());
        body
    }

    #[test]
    fn a_keyed_sessions_timer_changes_come_after_the_outputs_and_a_timer_fires_through_the_later_steps() {
        timer_changes_and_firings_on_the_ring(crate::steps::tests::TIMER_STEP_TYPE, "native");
    }

    #[test]
    fn a_hosted_python_steps_timer_changes_come_after_the_outputs_and_a_timer_fires_through_the_later_steps() {
        start_runtime();
        timer_changes_and_firings_on_the_ring(crate::python::tests::TIMER_STEP, "python");
    }

    /// The TimerStep of `step_type` (native, or hosted Python), in sessions named after `sessions`.
    fn timer_changes_and_firings_on_the_ring(step_type: &str, sessions: &str) {
        use crate::proto::{TimeDomain as Domain, TimerOp};
        let registry = Arc::new(Registry::new(false));
        let folder = Folder::new();
        let steps = vec![spec("t", step_type, r#"{"rearm_ms": 10}"#), spec("add", "append_field", "")];
        let (handle, ring) = served_on_ring(&registry, &folder, open_keyed_session(&registry, &format!("timer-changes-{sessions}"), Plane::Shm, steps));
        send(&ring, &[
            (l::LOAD, 1, load_of(b"a", Vec::new()).encode_to_vec()),
            (l::RECORD, 1, keyed_record(b"a", br#"{"do":"set:e:5 delete:p:7"}"#)),
            (l::RECORD, 2, keyed_record(b"a", br#"{"do":"set:e:6 fail"}"#)),
        ]);
        let answers = answers_through(&ring, 2);
        let kinds: Vec<_> = answers.iter().map(|(t, s, _)| (l::frame_name(*t), *s)).collect();
        let expected = [("OUTPUT", 1), ("TIMERS", 1), ("END_OF_OUTPUTS", 1), ("ERROR", 2)];
        assert_eq!(kinds, expected.map(|(t, s)| (t.to_string(), s)), "no TIMERS with an ERROR");
        let timers = TimerChanges::decode(&answers[1].2[..]).unwrap();
        let ops: Vec<_> = timers.changes.iter().map(|c| (TimerOp::from_i32(c.op).unwrap(), c.step, Domain::from_i32(c.domain).unwrap(), c.timestamp)).collect();
        assert_eq!(ops, [(TimerOp::Set, 0, Domain::EventTime, 5), (TimerOp::Delete, 0, Domain::ProcessingTime, 7)]);
        handle.closing.store(true, Ordering::Release);
        handle.await_end();

        let folder = Folder::new();
        let steps = vec![spec("t", step_type, r#"{"rearm_ms": 10}"#), spec("add", "append_field", "")];
        let (handle, ring) = served_on_ring(&registry, &folder, open_keyed_session(&registry, &format!("timer-firing-{sessions}"), Plane::Shm, steps));
        send(&ring, &[
            (l::LOAD, 1, load_of(b"a", vec![content_value(0, b"1")]).encode_to_vec()),
            (l::TIMER, 1, timer_body(b"a", 0, Domain::EventTime, 5)),
            (l::TIMER, 2, timer_body(b"a", 1, Domain::EventTime, 5)),
        ]);
        let answers = answers_through(&ring, 2);
        let kinds: Vec<_> = answers.iter().map(|(t, s, _)| (l::frame_name(*t), *s)).collect();
        let expected = [("OUTPUT", 1), ("TIMERS", 1), ("END_OF_OUTPUTS", 1), ("ERROR", 2)];
        assert_eq!(kinds, expected.map(|(t, s)| (t.to_string(), s)));
        assert_eq!(record::decode(&answers[0].2).unwrap().payload, br#"{"fired":5,"domain":"e","before":"1","processed":true}"#);
        assert_eq!(TimerChanges::decode(&answers[1].2[..]).unwrap().changes[0].timestamp, 15);
        let error = String::from_utf8(answers[3].2.clone()).unwrap();
        assert!(error.contains("a TIMER names step 'add' (index 1), which sets no timers"), "{error}");
        handle.closing.store(true, Ordering::Release);
        handle.await_end();
    }

    #[test]
    fn a_timer_whose_firing_is_no_message_ends_the_session_naming_the_ring() {
        let registry = Arc::new(Registry::new(false));
        let folder = Folder::new();
        let steps = vec![spec("t", crate::steps::tests::TIMER_STEP_TYPE, r#"{"cells": false}"#)];
        let (handle, ring) = served_on_ring(&registry, &folder, open_keyed_session(&registry, "corrupt-timer", Plane::Shm, steps));
        let mut body = timer_body(b"a", 0, crate::proto::TimeDomain::EventTime, 5);
        body.extend([0xff, 0xff]);
        send(&ring, &[(l::TIMER, 1, body)]);
        assert!(within(5, || handle.ended.load(Ordering::Acquire)), "the session goes on");
        assert_eq!(worker_heartbeat_and_closed(&ring).1, l::CLOSED_LEFT);
    }
}
