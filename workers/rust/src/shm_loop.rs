//! Serves one shm session on a thread of its own: reads the to-worker ring in order, feeds the session, and
//! writes each input's outputs and end marker (or error) into the from-worker ring, published once per polled
//! batch. When the bridge sends nothing it sleeps on the ring's futex, waking every 100 ms to check that the
//! bridge is still there.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error_text;
use crate::layout as l;
use crate::record::{self, Record};
use crate::registry::{Registry, SessionHandle};
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

    /// Serves until the bridge closes the ring or is lost, the session is closed, the worker is asked to stop, or
    /// the ring is corrupt; then closes the ring (removing the file of a bridge that crashed).
    fn run(mut self, registry: &Registry) {
        let heartbeat = self.ring.start_heartbeat();
        let mut inputs = self.ring.consumer();
        let mut answers = self.ring.producer();
        let why = match self.serve(&mut inputs, &mut answers) {
            Ok(why) => why,
            Err(e) => format!("the ring failed: {e}"),
        };
        answers.publish();
        let abandoned = !self.closing() && self.ring.bridge_crashed(self.liveness_timeout_ms);
        let stopped = self.handle.stop_asked.load(Ordering::Acquire) && !self.closing();
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
