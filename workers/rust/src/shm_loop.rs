//! Serves one shm session on a thread of its own: reads the to-worker ring in order, feeds the session, and
//! writes each input's outputs and end marker (or error) into the from-worker ring, published once per polled
//! batch. When the bridge sends nothing it sleeps on the ring's futex, waking every 100 ms to check that the
//! bridge is still there.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error_text;
use crate::layout as l;
use crate::record::{self, Record};
use crate::registry::{why_panicked, Registry, SessionHandle};
use crate::ring::{Consumer, Frame, Producer, RingError, RingFile};
use crate::session::Input;
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
}

impl ShmLoop {
    fn new(handle: Arc<SessionHandle>, ring: Arc<RingFile>, liveness_timeout_ms: i64) -> ShmLoop {
        ShmLoop { handle, ring, liveness_timeout_ms, outputs: Vec::new() }
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
        let input = match frame.frame_type {
            l::RECORD => {
                let record = record::decode(frame.body).map_err(|e| RingError(format!("{}: input #{}: {e}", inputs.name(), frame.sequence)))?;
                Input::Record((frame.flags != l::NO_KEY_GROUP).then_some(frame.flags as u32), record)
            }
            l::WATERMARK => Input::Watermark(self.long_body(&frame)?),
            l::BARRIER => Input::Barrier,
            l::CLOCK => Input::Clock(self.long_body(&frame)?),
            other => {
                return Err(RingError(format!(
                    "{}: the bridge sent a {} frame (input #{}), which a bridge never sends",
                    self.handle.name, l::frame_name(other), frame.sequence
                )))
            }
        };
        let mut outputs = std::mem::take(&mut self.outputs);
        let served = self.handle.logic.lock().unwrap().serve(input, &mut outputs);
        let sequence = frame.sequence;
        let result = match served {
            Ok(()) => outputs
                .iter()
                .try_for_each(|output| self.write(inputs, answers, l::OUTPUT, sequence, record::encoded_length(output), |body| record::encode_into(output, body)))
                .and_then(|_| self.write(inputs, answers, l::END_OF_OUTPUTS, sequence, 0, |_| {})),
            Err(text) => {
                // Cut to what the bridge takes and one frame holds (docs/protocol.md, "Error texts").
                let text = error_text::cut(&text, error_text::MAX_BYTES.min(answers.max_body()));
                self.write(inputs, answers, l::ERROR, sequence, text.len(), |body| body.copy_from_slice(text.as_bytes()))
            }
        };
        outputs.clear();
        self.outputs = outputs;
        result
    }

    /// The i64 a WATERMARK or CLOCK frame carries, once its length is known to hold one.
    fn long_body(&self, frame: &Frame<'_>) -> Result<i64, RingError> {
        let bytes = frame.body.get(..8).ok_or_else(|| {
            RingError(format!("{}: a {} frame of {} body bytes (input #{})", self.handle.name, l::frame_name(frame.frame_type), frame.body.len(), frame.sequence))
        })?;
        Ok(i64::from_le_bytes(bytes.try_into().unwrap()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    use crate::registry::tests::{echo_session, poison};
    use crate::registry::Plane;
    use crate::ring::tests::{reader_of_answers, worker_heartbeat_and_closed, writer_of_inputs, Folder};

    /// A session of one echo step, served over a ring of its own by its loop, its bridge never silent.
    fn served(registry: &Arc<Registry>, folder: &Folder, id: &str) -> (Arc<SessionHandle>, Arc<RingFile>) {
        let handle = echo_session(registry, id, Plane::Shm);
        let ring = folder.ring();
        *handle.thread.lock().unwrap() = Some(start(Arc::clone(registry), Arc::clone(&handle), Arc::clone(&ring), i64::MAX));
        (handle, ring)
    }

    fn send_barrier(ring: &Arc<RingFile>, sequence: u64) {
        let mut inputs = writer_of_inputs(ring);
        assert!(inputs.try_write(l::BARRIER, sequence, 0, |_| {}).unwrap());
        inputs.publish();
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
        let registry = Arc::new(Registry::new(false));
        let (panics_folder, serves_folder) = (Folder::new(), Folder::new());
        let (panics, panics_ring) = served(&registry, &panics_folder, "session-that-panics");
        let (serves, serves_ring) = served(&registry, &serves_folder, "session-that-serves");
        poison(&panics);
        send_barrier(&panics_ring, 1);

        assert!(within(5, || worker_heartbeat_and_closed(&panics_ring).1 == l::CLOSED_LEFT), "the ring is not closed as left");
        let beat = worker_heartbeat_and_closed(&panics_ring).0;
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(worker_heartbeat_and_closed(&panics_ring).0, beat, "the heartbeat beats on");
        assert!(within(5, || panics.ended.load(Ordering::Acquire)), "the loop did not end");
        assert!(!registry.sessions.lock().unwrap().contains_key("session-that-panics"), "the session is still open");

        send_barrier(&serves_ring, 7);
        let mut answers = reader_of_answers(&serves_ring);
        let mut taken = Vec::new();
        within(5, || {
            answers.poll(8, |_, frame| {
                taken.push((frame.frame_type, frame.sequence));
                Ok::<_, RingError>(())
            }).unwrap();
            !taken.is_empty()
        });
        assert_eq!(taken, [(l::END_OF_OUTPUTS, 7)], "the other session answers");
        serves.closing.store(true, Ordering::Release);
        serves.await_end();
    }
}
