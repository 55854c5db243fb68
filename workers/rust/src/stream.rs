//! The streamed gRPC data plane (`flinkbridge.v1.BridgeData/Exchange`): one bidirectional stream per session,
//! named by the call metadata `flink-bridge-session` and authenticated by `flink-bridge-token`. Each input
//! batch is answered by answer batches of at most 4 MiB, in order; the next input batch is read only once the
//! answers to the last are taken by flow control, so a bridge slow to take answers holds back its own inputs.
//!
//! In a keyed session a RECORD frame carries its key (`key`); LOAD frames (`cells`) go into the session unanswered,
//! as part of the record that follows; a BARRIER is answered with the cells changed since the last (CELL_WRITES
//! frames, each KeyCells of at most BATCH_BYTES unless one write alone is larger), then its end marker, and the keys
//! it names (`evict`) are dropped.
//!
//! A TIMER frame carries its key (`key`) and the firing (`firing`); a RECORD or TIMER whose steps set or deleted
//! timers is answered with its OUTPUTs, one TIMERS frame (`timers`), then its end marker.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::FutureExt;
use http::{HeaderMap, Response};
use prost::Message;

use crate::error_text;
use crate::grpc::{self, Code, Messages, Reply, Status, Streamed};
use crate::proto::{flink_worker, Frame, FrameBatch, FrameType, InputFailure, KeyCells};
use crate::record::Record;
use crate::registry::{why_panicked, Plane, Registry, SessionHandle};
use crate::ring::constant_time_equal;
use crate::session::{Failure, Input};
use crate::log;

pub const SESSION_KEY: &str = "flink-bridge-session";
const TOKEN_KEY: &str = "flink-bridge-token";
/// Either side cuts a batch once it holds this much.
const BATCH_BYTES: usize = 4 << 20;
/// The largest frame (with its tag and length) that always fits a message: it joins a batch of less than BATCH_BYTES.
const MAX_FRAME: usize = grpc::MAX_MESSAGE - BATCH_BYTES;
/// The largest KeyCells of a CELL_WRITES frame: what MAX_FRAME holds besides the frame's type, sequence and tags.
const MAX_CELL_WRITES: usize = MAX_FRAME - 64;

pub fn exchange(registry: Arc<Registry>, method: String, headers: &HeaderMap, messages: Messages) -> Response<Reply> {
    let text = |key| headers.get(key).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let handle = match registry.session(text(SESSION_KEY)) {
        Ok(handle) => handle,
        Err(status) => return Reply::status(status),
    };
    if !constant_time_equal(handle.token.as_bytes(), text(TOKEN_KEY).as_bytes()) {
        return Reply::status(Status::new(Code::PermissionDenied, format!("{}: token does not match", handle.name)));
    }
    if matches!(handle.plane, Plane::Shm) {
        return Reply::status(Status::new(Code::FailedPrecondition, format!("{} is served over its shared-memory ring, not a gRPC stream", handle.name)));
    }
    let (writer, response) = Reply::stream();
    tokio::spawn(async move {
        // A panic (a step's, or at a lock another panic poisoned) ends the session as a broken stream does; the
        // stream, its writer dropped, ends without a status.
        let end = AssertUnwindSafe(serve(&registry, &handle, &method, messages, writer)).catch_unwind().await;
        match end {
            Ok(End::Stopped) => log!("{}: stopped as asked, every input batch it took answered", handle.name),
            Ok(End::Ended(why)) => registry.end(&handle.id, &why),
            Err(panic) => registry.end(&handle.id, &why_panicked(panic.as_ref())),
        }
        handle.ended.store(true, Ordering::Release);
    });
    response
}

enum End {
    /// The worker was asked to stop: the stream was completed with OK.
    Stopped,
    /// The stream ended otherwise, which ends the session.
    Ended(String),
}

async fn serve(registry: &Registry, handle: &Arc<SessionHandle>, method: &str, mut messages: Messages, mut writer: Streamed) -> End {
    handle.ended.store(false, Ordering::Release);
    let mut stop = registry.stop_signal.subscribe();
    let mut outputs = Vec::new();
    loop {
        if handle.stop_asked.load(Ordering::Acquire) {
            writer.finish(Status::new(Code::Ok, "")).await;
            return End::Stopped;
        }
        let next = tokio::select! {
            next = registry.read::<FrameBatch>(method, &mut messages) => next,
            _ = stop.changed() => continue,
        };
        let batch = match next {
            Ok(Some(batch)) => batch,
            Ok(None) => {
                writer.finish(Status::new(Code::Ok, "")).await;
                return End::Ended("its data stream ended".into());
            }
            Err(status) => {
                let why = format!("its data stream failed: {}", status.message);
                writer.finish(status).await;
                return End::Ended(why);
            }
        };
        let answers = answer(handle, batch, &mut outputs);
        for answer in answers {
            if writer.send(&answer).await.is_err() {
                return End::Ended("its data stream broke, so the bridge is gone".into());
            }
        }
    }
}

/// The answer batches to one input batch, each cut once it holds BATCH_BYTES.
fn answer(handle: &SessionHandle, batch: FrameBatch, outputs: &mut Vec<Record>) -> Vec<FrameBatch> {
    let mut batches = vec![FrameBatch::default()];
    let mut size = 0;
    let mut logic = handle.logic.lock().unwrap();
    let dead_letters = logic.has_dead_letter_step();
    let keyed = logic.keyed();
    for frame in batch.frames {
        let sequence = frame.sequence;
        let kind = FrameType::from_i32(frame.r#type);
        if kind == Some(FrameType::Load) {
            // Part of the record input that follows, answered with it: a LOAD the session refuses fails the session,
            // and that record is answered with the error.
            match frame.cells {
                Some(cells) => drop(logic.serve(Input::Load(sequence, cells), outputs)),
                None => logic.fail(&format!("the LOAD frame of input #{sequence} has no cells")),
            }
            continue;
        }
        let checked = dead_letters && kind == Some(FrameType::Record);
        let barrier = kind == Some(FrameType::Barrier);
        let changes_timers = matches!(kind, Some(FrameType::Record | FrameType::Timer));
        let served = match input(&handle.name, keyed, frame) {
            Ok(input) => logic.serve(input, outputs),
            Err(text) => {
                // A frame a bridge never sends fails the session, as a step's error does.
                logic.fail(&text);
                Err(Failure::Session(text))
            }
        };
        let served = served.and_then(|()| if barrier { logic.cell_writes(BATCH_BYTES, MAX_CELL_WRITES) } else { Ok(Vec::new()) });
        let mut push = |frame: Frame| {
            size += framed_length(&frame);
            batches.last_mut().expect("never empty").frames.push(frame);
            if size >= BATCH_BYTES {
                batches.push(FrameBatch::default());
                size = 0;
            }
        };
        let output = |record| Frame { r#type: FrameType::Output as i32, sequence, record: Some(message(record)), ..Default::default() };
        let cell_writes = |cells: KeyCells| Frame { r#type: FrameType::CellWrites as i32, sequence, cells: Some(cells), ..Default::default() };
        let timers = |timers| Frame { r#type: FrameType::Timers as i32, sequence, timers: Some(timers), ..Default::default() };
        let served = match served {
            // Held until all are known to fit, as a failed input sends none of its outputs.
            Ok(_) if checked => {
                let frames: Vec<Frame> = outputs.drain(..).map(output).collect();
                match frames.iter().map(framed_length).find(|&length| length > MAX_FRAME) {
                    Some(length) => Err(Failure::Input(logic.output_unsendable(format!(
                        "an output frame of {length} bytes does not fit a message of the stream, which holds frames of at most {MAX_FRAME}"
                    )))),
                    None => {
                        frames.into_iter().for_each(&mut push);
                        logic.timer_changes().map(timers).into_iter().for_each(&mut push);
                        Ok(())
                    }
                }
            }
            Ok(writes) => {
                writes.into_iter().map(cell_writes).for_each(&mut push);
                outputs.drain(..).map(output).for_each(&mut push);
                if changes_timers {
                    logic.timer_changes().map(timers).into_iter().for_each(&mut push);
                }
                Ok(())
            }
            Err(failed) => Err(failed),
        };
        match served {
            Ok(()) => push(Frame { r#type: FrameType::EndOfOutputs as i32, sequence, ..Default::default() }),
            Err(Failure::Input(failed)) => {
                let message = failed.cut_message(&handle.name, error_text::MAX_BYTES).into_owned();
                let failure = InputFailure { step: failed.step, error_class: failed.error_class, message };
                push(Frame { r#type: FrameType::InputFailed as i32, sequence, failure: Some(failure), ..Default::default() })
            }
            Err(Failure::Session(error)) => {
                // Cut to what the bridge takes (docs/protocol.md, "Error texts").
                let error = error_text::cut(&error, error_text::MAX_BYTES).into_owned();
                push(Frame { r#type: FrameType::Error as i32, sequence, error, ..Default::default() })
            }
        }
    }
    batches.retain(|b| !b.frames.is_empty());
    batches
}

/// The bytes a frame takes in its batch: its tag, its length and itself.
fn framed_length(frame: &Frame) -> usize {
    let length = frame.encoded_len();
    1 + prost::length_delimiter_len(length) + length
}

/// The input a frame carries; a keyed session's records with their keys.
fn input(session: &str, keyed: bool, frame: Frame) -> Result<Input, String> {
    let sequence = frame.sequence;
    match FrameType::from_i32(frame.r#type) {
        Some(FrameType::Record) => {
            let message = frame.record.ok_or_else(|| format!("{session}: the RECORD frame of input #{sequence} has no record"))?;
            Ok(Input::Record(frame.key_group, keyed.then(|| frame.key.to_vec()), record(message)))
        }
        Some(FrameType::Watermark) => Ok(Input::Watermark(frame.watermark)),
        Some(FrameType::Barrier) => Ok(Input::Barrier(frame.evict.iter().map(|key| key.to_vec()).collect())),
        Some(FrameType::Clock) => Ok(Input::Clock(frame.processing_time)),
        Some(FrameType::Timer) => {
            let firing = frame.firing.ok_or_else(|| format!("{session}: the TIMER frame of input #{sequence} has no firing"))?;
            Ok(Input::Timer(frame.key_group, frame.key.to_vec(), firing))
        }
        _ => {
            let kind = FrameType::from_i32(frame.r#type).map_or_else(|| format!("unknown type {}", frame.r#type), |t| format!("{t:?}"));
            Err(format!("{session}: the bridge sent a {kind} frame (input #{sequence}), which a bridge never sends"))
        }
    }
}

fn record(message: flink_worker::Message) -> Record {
    // A map on the wire: the order of headers is not kept by the protocol; sorted here so that answers are stable.
    let mut headers: Vec<_> = message.headers.into_iter().collect();
    headers.sort();
    Record { payload: message.payload.to_vec(), headers: headers.into_iter().collect(), timestamp: message.timestamp }
}

fn message(record: Record) -> flink_worker::Message {
    flink_worker::Message { payload: record.payload.into(), headers: record.headers.into_iter().collect(), timestamp: record.timestamp }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_text::{encoded_length, tests::parts, MAX_BYTES};
    use crate::python::tests::{start_runtime, LONG_MESSAGE_START};
    use crate::registry::tests::{echo_session, poison};
    use crate::cells::tests::{content_entries, content_value, load_of, ops, CELL_COUNTER_TYPE};
    use crate::proto::CellOp;
    use crate::session::tests::{dead_letter, echo_then_add, spec, NOT_JSON};
    use crate::session::{Session, StepSpec};
    use crate::step::NATIVE_ERROR;
    use hyper::Body;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn a_panic_serving_a_stream_ends_its_session() {
        let registry = Arc::new(Registry::new(false));
        let handle = echo_session(&registry, "session-that-panics", Plane::Stream);
        poison(&handle);
        let mut headers = HeaderMap::new();
        headers.insert(SESSION_KEY, "session-that-panics".parse().unwrap());
        headers.insert(TOKEN_KEY, "token".parse().unwrap());
        let barrier = Frame { r#type: FrameType::Barrier as i32, sequence: 1, ..Default::default() };
        let inputs = Messages::new(Body::from(grpc::frame(&FrameBatch { frames: vec![barrier] })));

        let _answers = exchange(Arc::clone(&registry), "flinkbridge.v1.BridgeData/Exchange".into(), &headers, inputs);

        let deadline = Instant::now() + Duration::from_secs(5);
        while registry.sessions.lock().unwrap().contains_key("session-that-panics") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!registry.sessions.lock().unwrap().contains_key("session-that-panics"), "the session is still open");
        assert!(handle.ended.load(Ordering::Acquire));
    }

    #[test]
    fn a_step_failing_a_record_with_a_huge_message_answers_an_error_with_its_text_cut() {
        start_runtime();
        let handle = session(vec![spec("failing", "hosted_segments.FailsOnRecord", "")]);

        let answers = answer(&handle, records(&[b""]), &mut Vec::new());

        let error = &answers[0].frames[0];
        assert_eq!((error.r#type, error.sequence), (FrameType::Error as i32, 0));
        assert!(encoded_length(&error.error) <= MAX_BYTES, "{} bytes", encoded_length(&error.error));
        let (start, _, _) = parts(&error.error).expect("the marker");
        let failed = format!("session s: step 'failing' (hosted_segments.FailsOnRecord) failed: RuntimeError: {LONG_MESSAGE_START}");
        assert!(start.starts_with(&failed), "{start}");
    }

    fn records(payloads: &[&[u8]]) -> FrameBatch {
        let record = |(sequence, payload): (u64, &&[u8])| Frame {
            r#type: FrameType::Record as i32,
            sequence,
            record: Some(flink_worker::Message { payload: payload.to_vec().into(), ..Default::default() }),
            ..Default::default()
        };
        FrameBatch { frames: (0..).zip(payloads).map(record).collect() }
    }

    fn session(steps: Vec<StepSpec>) -> SessionHandle {
        SessionHandle::new("s".into(), "session s".into(), "t".into(), Plane::Stream, Session::new("session s".into(), steps).expect("built"))
    }

    fn keyed_session(steps: Vec<StepSpec>) -> SessionHandle {
        SessionHandle::new("s".into(), "session s".into(), "t".into(), Plane::Stream, Session::open("session s".into(), steps, true).expect("built"))
    }

    fn keyed_record(sequence: u64, key: &[u8], payload: &[u8]) -> Frame {
        Frame {
            r#type: FrameType::Record as i32,
            sequence,
            key: key.to_vec().into(),
            key_group: Some(3),
            record: Some(flink_worker::Message { payload: payload.to_vec().into(), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn a_keyed_stream_takes_records_with_their_keys_and_loads_and_answers_a_barrier_with_its_cell_writes() {
        let handle = keyed_session(vec![spec("count", CELL_COUNTER_TYPE, "")]);
        let load = Frame { r#type: FrameType::Load as i32, sequence: 1, cells: Some(load_of(b"a", vec![content_value(0, b"4")])), ..Default::default() };
        let barrier = Frame { r#type: FrameType::Barrier as i32, sequence: 3, ..Default::default() };
        let frames = vec![load, keyed_record(1, b"a", b"x"), keyed_record(2, b"a", b"y"), barrier, keyed_record(4, b"b", b"x")];

        let answers = answer(&handle, FrameBatch { frames }, &mut Vec::new());

        let frames = &answers[0].frames;
        let kinds: Vec<_> = frames.iter().map(|f| (FrameType::from_i32(f.r#type).unwrap(), f.sequence)).collect();
        use FrameType::{CellWrites, EndOfOutputs, Error, Output};
        assert_eq!(kinds, [(Output, 1), (EndOfOutputs, 1), (Output, 2), (EndOfOutputs, 2), (CellWrites, 3), (EndOfOutputs, 3), (Error, 4)], "a LOAD has no answer of its own");
        assert_eq!(frames[2].record.as_ref().unwrap().payload, &b"total=6 seen=x=5,y=6"[..]);
        let writes = frames[4].cells.as_ref().expect("the cells");
        assert_eq!(&writes.key[..], b"a");
        assert_eq!(ops(writes), [(0, CellOp::Set, vec![], b"6".to_vec()), (1, CellOp::Put, b"x".to_vec(), b"5".to_vec()), (1, CellOp::Put, b"y".to_vec(), b"6".to_vec())]);
        assert!(frames[6].error.contains("the record's key 'b' is not resident"), "{}", frames[6].error);
    }

    #[test]
    fn a_keyed_streams_running_count_counts_on_from_its_loaded_cell_and_answers_a_barrier_with_the_counts_written() {
        let handle = keyed_session(vec![spec("count", "running_count", r#"{"key_json_field":"user"}"#)]);
        let counts = |key: &[u8], count: i64| load_of(key, vec![content_entries(0, &[(key, &count.to_le_bytes())])]);
        let frames = vec![
            Frame { r#type: FrameType::Load as i32, sequence: 1, cells: Some(counts(b"a", 5)), ..Default::default() },
            keyed_record(1, b"a", br#"{"user":"a"}"#),
            // A key never counted: its LOAD carries no cell.
            Frame { r#type: FrameType::Load as i32, sequence: 2, cells: Some(load_of(b"b", Vec::new())), ..Default::default() },
            keyed_record(2, b"b", br#"{"user":"b"}"#),
            Frame { r#type: FrameType::Barrier as i32, sequence: 3, ..Default::default() },
        ];

        let answers = answer(&handle, FrameBatch { frames }, &mut Vec::new());

        let frames = &answers[0].frames;
        let kinds: Vec<_> = frames.iter().map(|f| (FrameType::from_i32(f.r#type).unwrap(), f.sequence)).collect();
        use FrameType::{CellWrites, EndOfOutputs, Output};
        assert_eq!(kinds, [(Output, 1), (EndOfOutputs, 1), (Output, 2), (EndOfOutputs, 2), (CellWrites, 3), (CellWrites, 3), (EndOfOutputs, 3)]);
        let output = |at: usize| frames[at].record.as_ref().unwrap();
        assert_eq!((&output(0).payload[..], output(0).headers.get("key").map(String::as_str)), (&br#"{"key":"a","count":6}"#[..], Some("a")));
        assert_eq!(&output(2).payload[..], br#"{"key":"b","count":1}"#);
        let written = |at: usize| frames[at].cells.as_ref().map(|c| (c.key.to_vec(), c.resident_bytes, ops(c))).unwrap();
        let put = |key: &[u8], count: i64| vec![(0, CellOp::Put, key.to_vec(), count.to_le_bytes().to_vec())];
        assert_eq!(written(4), (b"a".to_vec(), 1 + 8, put(b"a", 6)));
        assert_eq!(written(5), (b"b".to_vec(), 1 + 8, put(b"b", 1)));
    }

    fn barrier_evicting(sequence: u64, evict: &[&[u8]]) -> Frame {
        Frame { r#type: FrameType::Barrier as i32, sequence, evict: evict.iter().map(|key| key.to_vec().into()).collect(), ..Default::default() }
    }

    fn load(sequence: u64, key: &[u8], total: &[u8]) -> Frame {
        Frame { r#type: FrameType::Load as i32, sequence, cells: Some(load_of(key, vec![content_value(0, total)])), ..Default::default() }
    }

    #[test]
    fn a_barrier_evicts_the_keys_it_names_once_answered_and_such_a_keys_next_record_needs_a_load() {
        let handle = keyed_session(vec![spec("count", CELL_COUNTER_TYPE, r#"{"list_seen": false}"#)]);
        let frames = vec![
            load(1, b"a", b"4"),
            keyed_record(1, b"a", b"x"),
            load(2, b"b", b"7"),
            keyed_record(2, b"b", b"y"),
            barrier_evicting(3, &[]),
            keyed_record(4, b"b", b"z"),
            barrier_evicting(5, &[b"a", b"never loaded"]),
            // Loaded again: served from what the LOAD carries.
            load(6, b"a", b"40"),
            keyed_record(6, b"a", b"x"),
            barrier_evicting(7, &[b"a", b"b"]),
            // Evicted again, and no LOAD before its record.
            keyed_record(8, b"b", b"w"),
        ];

        let answers = answer(&handle, FrameBatch { frames }, &mut Vec::new());

        let frames = &answers[0].frames;
        let kinds: Vec<_> = frames.iter().map(|f| (FrameType::from_i32(f.r#type).unwrap(), f.sequence)).collect();
        use FrameType::{CellWrites, EndOfOutputs, Error, Output};
        assert_eq!(
            kinds,
            [
                (Output, 1), (EndOfOutputs, 1), (Output, 2), (EndOfOutputs, 2),
                (CellWrites, 3), (CellWrites, 3), (EndOfOutputs, 3),
                (Output, 4), (EndOfOutputs, 4),
                (CellWrites, 5), (EndOfOutputs, 5),
                (Output, 6), (EndOfOutputs, 6),
                (CellWrites, 7), (EndOfOutputs, 7),
                (Error, 8),
            ]
        );
        let payload = |at: usize| frames[at].record.as_ref().unwrap().payload.to_vec();
        let written = |at: usize| frames[at].cells.as_ref().map(|c| (c.key.to_vec(), c.resident_bytes, ops(c)[0].clone())).unwrap();
        let set = |value: &[u8]| (0, CellOp::Set, Vec::new(), value.to_vec());
        assert_eq!((payload(0), payload(2), payload(7)), (b"total=5".to_vec(), b"total=8".to_vec(), b"total=9".to_vec()));
        assert_eq!(written(4), (b"a".to_vec(), 1 + 1 + 1, set(b"5")));
        assert_eq!(written(5), (b"b".to_vec(), 1 + 1 + 1, set(b"8")));
        assert_eq!(written(9), (b"b".to_vec(), 1 + 2 + 2, set(b"9")), "the evicted key was clean: nothing of it is written");
        assert_eq!(payload(11), b"total=41");
        assert_eq!(written(13), (b"a".to_vec(), 2 + 1 + 2, set(b"41")));
        assert!(frames[15].error.contains("the record's key 'b' is not resident: no LOAD of it came in this session"), "{}", frames[15].error);
    }

    #[test]
    fn a_load_without_cells_fails_the_session_and_the_record_after_it_is_answered_with_the_error() {
        let handle = keyed_session(vec![spec("count", CELL_COUNTER_TYPE, "")]);
        let load = Frame { r#type: FrameType::Load as i32, sequence: 1, ..Default::default() };

        let answers = answer(&handle, FrameBatch { frames: vec![load, keyed_record(1, b"a", b"x")] }, &mut Vec::new());

        let frames = &answers[0].frames;
        assert_eq!((frames.len(), frames[0].r#type, frames[0].sequence), (1, FrameType::Error as i32, 1));
        assert!(frames[0].error.contains("session already failed: the LOAD frame of input #1 has no cells"), "{}", frames[0].error);
    }

    #[test]
    fn a_record_a_dead_letter_step_fails_on_is_answered_input_failed_alone_and_the_next_served() {
        let handle = session(echo_then_add());

        let answers = answer(&handle, records(&[br#"{"a":1}"#, b"not json", br#"{"b":2}"#]), &mut Vec::new());

        let frames = &answers[0].frames;
        let kinds: Vec<_> = frames.iter().map(|f| (FrameType::from_i32(f.r#type).unwrap(), f.sequence)).collect();
        use FrameType::{EndOfOutputs, InputFailed, Output};
        assert_eq!(kinds, [(Output, 0), (EndOfOutputs, 0), (InputFailed, 1), (Output, 2), (EndOfOutputs, 2)]);
        assert_eq!(frames[0].record.as_ref().unwrap().payload, &br#"{"a":1,"processed":true}"#[..]);
        let failure = frames[2].failure.as_ref().expect("the failure");
        assert_eq!((failure.step.as_str(), failure.error_class.as_str()), ("add", NATIVE_ERROR));
        assert!(failure.message.starts_with(NOT_JSON), "{}", failure.message);
    }

    #[test]
    fn a_failed_inputs_long_message_is_cut() {
        start_runtime();
        let handle = session(vec![dead_letter("failing", "hosted_segments.FailsOnRecord", "")]);

        let answers = answer(&handle, records(&[b"{}"]), &mut Vec::new());

        let failure = answers[0].frames[0].failure.as_ref().expect("the failure");
        assert_eq!((failure.step.as_str(), failure.error_class.as_str()), ("failing", "RuntimeError"));
        assert!(encoded_length(&failure.message) <= MAX_BYTES, "{} bytes", encoded_length(&failure.message));
        let (start, _, _) = parts(&failure.message).expect("the marker");
        assert!(start.starts_with(LONG_MESSAGE_START), "{start}");
    }

    /// The TimerStep of `step_type` (native, or hosted Python) over the stream.
    fn timer_changes_and_firings_on_the_stream(step_type: &str) {
        use crate::proto::{TimeDomain, TimerFiring, TimerOp};
        let steps = vec![spec("t", step_type, r#"{"rearm_ms": 10}"#), spec("add", "append_field", "")];
        let handle = keyed_session(steps);
        let timer = |sequence: u64, step: u32, domain: TimeDomain| Frame {
            r#type: FrameType::Timer as i32,
            sequence,
            key: b"a".to_vec().into(),
            key_group: Some(3),
            firing: Some(TimerFiring { timestamp: 5, step, domain: domain as i32 }),
            ..Default::default()
        };
        let frames = vec![
            Frame { r#type: FrameType::Load as i32, sequence: 1, cells: Some(load_of(b"a", vec![content_value(0, b"1")])), ..Default::default() },
            keyed_record(1, b"a", br#"{"do":"set:p:7"}"#),
            keyed_record(2, b"a", br#"{"do":"set:p:8 fail"}"#),
        ];
        let answers = answer(&handle, FrameBatch { frames }, &mut Vec::new());
        let frames = &answers[0].frames;
        let kinds: Vec<_> = frames.iter().map(|f| (FrameType::from_i32(f.r#type).unwrap(), f.sequence)).collect();
        use FrameType::{EndOfOutputs, Error, Output, Timers};
        assert_eq!(kinds, [(Output, 1), (Timers, 1), (EndOfOutputs, 1), (Error, 2)], "no TIMERS with an ERROR");
        let change = &frames[1].timers.as_ref().unwrap().changes[0];
        assert_eq!((TimerOp::from_i32(change.op), change.step, TimeDomain::from_i32(change.domain), change.timestamp), (Some(TimerOp::Set), 0, Some(TimeDomain::ProcessingTime), 7));

        let handle = keyed_session(vec![spec("t", step_type, r#"{"rearm_ms": 10}"#), spec("add", "append_field", "")]);
        let frames = vec![
            Frame { r#type: FrameType::Load as i32, sequence: 1, cells: Some(load_of(b"a", vec![content_value(0, b"1")])), ..Default::default() },
            timer(1, 0, TimeDomain::ProcessingTime),
            timer(2, 0, TimeDomain::Unspecified),
        ];
        let answers = answer(&handle, FrameBatch { frames }, &mut Vec::new());
        let frames = &answers[0].frames;
        let kinds: Vec<_> = frames.iter().map(|f| (FrameType::from_i32(f.r#type).unwrap(), f.sequence)).collect();
        assert_eq!(kinds, [(Output, 1), (Timers, 1), (EndOfOutputs, 1), (Error, 2)]);
        assert_eq!(frames[0].record.as_ref().unwrap().payload, &br#"{"fired":5,"domain":"p","before":"1","processed":true}"#[..]);
        assert_eq!(frames[1].timers.as_ref().unwrap().changes[0].timestamp, 15);
        assert!(frames[3].error.contains("a TIMER of step 't' names time domain 0"), "{}", frames[3].error);
    }

    #[test]
    fn a_keyed_streams_timer_changes_come_after_the_outputs_and_a_timer_fires_through_the_later_steps() {
        timer_changes_and_firings_on_the_stream(crate::steps::tests::TIMER_STEP_TYPE);
    }

    #[test]
    fn a_hosted_python_steps_timer_changes_come_after_the_outputs_and_a_timer_fires_through_the_later_steps() {
        start_runtime();
        timer_changes_and_firings_on_the_stream(crate::python::tests::TIMER_STEP);
    }

    #[test]
    fn a_timer_frame_without_its_firing_is_an_error() {
        let handle = keyed_session(vec![spec("t", crate::steps::tests::TIMER_STEP_TYPE, r#"{"cells": false}"#)]);
        let no_firing = Frame { r#type: FrameType::Timer as i32, sequence: 1, key: b"a".to_vec().into(), ..Default::default() };
        let answers = answer(&handle, FrameBatch { frames: vec![no_firing] }, &mut Vec::new());
        assert!(answers[0].frames[0].error.contains("the TIMER frame of input #1 has no firing"), "{}", answers[0].frames[0].error);
    }
}
