//! The built-in steps, with the same configuration, output and state encoding as the Java worker's
//! (worker/src/main/java/org/flinkbridge/worker/steps) and the Python worker's, so one pipeline file gives the
//! same output with any worker, and a savepoint taken with one restores in another (docs/steps.md).

use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::cells::{BuildContext, MapCell, ValueCell};
use crate::python::WindowAggregate;
use crate::record::Record;
use crate::step::{write_bytes, Emit, StateReader, Step, StepContext, StepError, TimeDomain, STATE_VERSION};
use crate::timers::TimerService;

pub const MAX_WATERMARK: i64 = i64::MAX;
const BATCH_SIZE_HEADER: &str = "batch_size";

/// Whether a step of this type is native to this binary (a built-in step, or one compiled in), not Python.
pub fn is_native(step_type: &str) -> bool {
    #[cfg(test)]
    if step_type == crate::cells::tests::CELL_COUNTER_TYPE || step_type == tests::TIMER_STEP_TYPE {
        return true;
    }
    matches!(step_type, "append_field" | "filter" | "batch" | "running_count" | "count" | "window" | ECHO_TYPE)
}

/// Whether a step of this type and config runs Python code though its type is built in: a `window` whose aggregate
/// is a user class (a name with a dot), which the worker hosts (python.rs). A config that is not JSON is not.
pub fn hosts_python(step_type: &str, config_json: &str) -> bool {
    step_type == "window"
        && serde_json::from_str::<Value>(config_json).ok().and_then(|config| config.get("aggregate")?.as_str().map(|a| a.contains('.'))).unwrap_or(false)
}

/// Builds a built-in step by its type, or None for a type that is not one. Whatever the type, its config must be
/// a JSON object; an error names the step and what is wrong. A step's cells and timers are declared with `context` (of
/// the built-in steps, running_count's cells and batch's and count's cells and timers in a keyed session, window's cells
/// and timers).
pub fn build(step_name: &str, step_type: &str, config_json: &str, context: &BuildContext) -> Result<Option<Box<dyn Step>>, String> {
    let parsed: Value = if config_json.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(config_json).map_err(|e| format!("step '{step_name}': config is not JSON: {e}"))?
    };
    let config = StepConfig::new(step_name, parsed)?;
    let step: Box<dyn Step> = match step_type {
        "append_field" => Box::new(AppendField::new(&config)?),
        "filter" => Box::new(Filter::new(&config)?),
        "batch" => Box::new(Batch::new(&config, context)?),
        "running_count" => Box::new(RunningCount::new(&config, context)?),
        "count" => Box::new(Count::new(&config, context)?),
        "window" => Box::new(Window::new(&config, context)?),
        ECHO_TYPE => Box::new(Echo),
        #[cfg(test)]
        crate::cells::tests::CELL_COUNTER_TYPE => Box::new(crate::cells::tests::CellCounter::new(&config.config, context)?),
        #[cfg(test)]
        tests::TIMER_STEP_TYPE => Box::new(tests::TimerStep::new(&config.config, context)?),
        _ => return Ok(None),
    };
    Ok(Some(step))
}

/// The type of a step compiled into this binary beside the built-ins (Rust code is not loaded at run time).
pub const ECHO_TYPE: &str = "flink_bridge_worker::Echo";

/// Answers each input with itself: a step that does no work, so a round trip through it measures the transport
/// and the runtime (the round-trip benchmark's echo, as the Java and Python workers have theirs).
struct Echo;

impl Step for Echo {
    fn process(&mut self, record: Record, _: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        emit(record);
        Ok(())
    }
}

/// Typed reads of a step's config, with errors naming the step, the key and what is expected.
struct StepConfig<'a> {
    step_name: &'a str,
    config: Map<String, Value>,
}

impl<'a> StepConfig<'a> {
    fn new(step_name: &'a str, config: Value) -> Result<Self, String> {
        match config {
            Value::Object(config) => Ok(StepConfig { step_name, config }),
            other => Err(invalid(step_name, "config", "an object", &other)),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.config.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(self.step_name, key, "a string", other)),
        }
    }

    fn positive_long(&self, key: &str, fallback: i64) -> Result<i64, String> {
        self.long_at_least(key, fallback, 1)
    }

    fn long_at_least(&self, key: &str, fallback: i64, least: i64) -> Result<i64, String> {
        match self.get(key) {
            None => Ok(fallback),
            Some(value) => {
                let whole = value.as_i64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && *f <= i64::MAX as f64).map(|f| f as i64));
                match whole {
                    Some(n) if n >= least => Ok(n),
                    _ => Err(invalid(self.step_name, key, &format!("a whole number >= {least}"), value)),
                }
            }
        }
    }

    fn boolean(&self, key: &str, fallback: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(fallback),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(invalid(self.step_name, key, "true or false", other)),
        }
    }
}

fn invalid(step_name: &str, key: &str, expected: &str, found: &Value) -> String {
    format!("step '{step_name}': config {key} must be {expected}, not {found}")
}

/// A value read from a record: a header (`<prefix>header`) or a top-level JSON field (`<prefix>json_field`)
/// as its text; None when missing or when the payload is no JSON object.
#[derive(Clone)]
enum RecordField {
    Header(String),
    JsonField(String),
}

impl RecordField {
    fn from_config(config: &StepConfig, prefix: &str, required: bool) -> Result<Option<RecordField>, String> {
        let header = config.string(&format!("{prefix}header"))?;
        let json_field = config.string(&format!("{prefix}json_field"))?;
        match (header, json_field) {
            (Some(_), Some(_)) => Err(format!("step '{}': give {prefix}header or {prefix}json_field, not both", config.step_name)),
            (Some(h), None) => Ok(Some(RecordField::Header(h))),
            (None, Some(f)) => Ok(Some(RecordField::JsonField(f))),
            (None, None) if required => Err(format!("step '{}': config needs {prefix}header or {prefix}json_field", config.step_name)),
            (None, None) => Ok(None),
        }
    }

    fn read(&self, record: &Record) -> Option<String> {
        match self {
            RecordField::Header(name) => record.headers.get(name).cloned(),
            RecordField::JsonField(field) => top_level_scalar(&record.payload, field),
        }
    }
}

/// A top-level field's text if it is a scalar and not null (numbers as written out again).
fn top_level_scalar(payload: &[u8], field: &str) -> Option<String> {
    match serde_json::from_slice::<Value>(payload).ok()? {
        Value::Object(document) => match document.get(field)? {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Compact JSON, non-ASCII left as UTF-8: what Jackson writes.
fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value always serializes")
}

/// `append_field`: adds one field (`field`, default "processed") with `value` (default true) to a JSON object payload.
struct AppendField {
    step_name: String,
    field: String,
    value: Value,
}

impl AppendField {
    fn new(config: &StepConfig) -> Result<Self, String> {
        Ok(AppendField {
            step_name: config.step_name.to_string(),
            field: config.string("field")?.unwrap_or_else(|| "processed".into()),
            value: config.config.get("value").cloned().unwrap_or(Value::Bool(true)),
        })
    }
}

impl Step for AppendField {
    fn process(&mut self, record: Record, _: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        let document: Value = serde_json::from_slice(&record.payload)
            .map_err(|e| format!("step '{}' (append_field): the payload is not JSON: {e}", self.step_name))?;
        let Value::Object(mut document) = document else {
            return Err(format!("step '{}' (append_field): the payload is not a JSON object", self.step_name).into());
        };
        document.insert(self.field.clone(), self.value.clone());
        let payload = json_bytes(&Value::Object(document));
        emit(Record { payload, headers: record.headers, timestamp: record.timestamp });
        Ok(())
    }
}

/// `filter`: keeps the records whose field equals `equals` (`negate: true` keeps the others).
struct Filter {
    field: RecordField,
    expected: String,
    negate: bool,
}

impl Filter {
    fn new(config: &StepConfig) -> Result<Self, String> {
        let field = RecordField::from_config(config, "", true)?.expect("required");
        let expected = config.string("equals")?.ok_or_else(|| invalid(config.step_name, "equals", "a string", &Value::Null))?;
        Ok(Filter { field, expected, negate: config.boolean("negate", false)? })
    }
}

impl Step for Filter {
    fn process(&mut self, record: Record, _: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        if (self.field.read(&record).as_deref() == Some(self.expected.as_str())) != self.negate {
            emit(record);
        }
        Ok(())
    }
}

/// The value cell a keyed session's `batch` keeps the key's open batch in.
const BATCH_CELL: &str = "batch";

/// `batch`: a JSON array of up to `max_count` payloads with a `batch_size` header, closed at `max_count`, when
/// a record or watermark comes after it has been open `max_wait_ms` (the bridge's clock), and at the end of
/// input. In a session that is not keyed the open batch is the state. In a keyed one (protocol 6) each key's open
/// batch is its value cell `batch` (encoded as the state encodes one batch), and timers close it: the first record
/// sets a processing-time timer at its clock + `max_wait_ms` and an event-time one at `i64::MAX` (the end of input);
/// a firing of either, or `max_count`, emits the batch and deletes the timers left. The instance holds nothing then.
struct Batch {
    step_name: String,
    max_count: i64,
    max_wait_ms: i64,
    /// In a keyed session: the cell of the key's open batch and the timers that close it.
    keyed: Option<(ValueCell, TimerService)>,
    /// In a session that is not keyed: the open batch and when it opened.
    batch: Vec<Record>,
    opened_at: i64,
}

impl Batch {
    fn new(config: &StepConfig, context: &BuildContext) -> Result<Self, String> {
        let max_count = config.positive_long("max_count", 100)?;
        if max_count > 1_000_000 {
            return Err(invalid(config.step_name, "max_count", "at most 1000000", &Value::from(max_count)));
        }
        let keyed = if context.keyed() { Some((context.value_cell(BATCH_CELL)?, context.timers()?)) } else { None };
        Ok(Batch {
            step_name: config.step_name.to_string(),
            max_count,
            max_wait_ms: config.positive_long("max_wait_ms", 1000)?,
            keyed,
            batch: Vec::new(),
            opened_at: 0,
        })
    }

    fn aged(&self, context: &StepContext) -> bool {
        context.current_time_millis() - self.opened_at >= self.max_wait_ms
    }

    /// When the processing-time timer of a batch opened at `opened_at` fires.
    fn closes_at(&self, opened_at: i64) -> i64 {
        opened_at.saturating_add(self.max_wait_ms)
    }

    /// One batch as the state holds it: version, when it opened, its records.
    fn encode(opened_at: i64, batch: &[Record]) -> Vec<u8> {
        let mut out = vec![STATE_VERSION];
        out.extend_from_slice(&opened_at.to_be_bytes());
        out.extend_from_slice(&(batch.len() as i32).to_be_bytes());
        for record in batch {
            out.extend_from_slice(&record.timestamp.to_be_bytes());
            out.extend_from_slice(&(record.headers.len() as i32).to_be_bytes());
            for (key, value) in &record.headers {
                write_bytes(&mut out, key.as_bytes());
                write_bytes(&mut out, value.as_bytes());
            }
            write_bytes(&mut out, &record.payload);
        }
        out
    }

    /// What `encode` wrote: when the batch opened, and its records (at most `max_count`).
    fn decode(&self, state: &[u8]) -> Result<(i64, Vec<Record>), String> {
        let mut reader = StateReader::new(state, "batch");
        reader.version()?;
        let opened_at = reader.long()?;
        let size = reader.int()?;
        if size < 0 || size as i64 > self.max_count {
            return Err(format!("batch state holds {size} records; max_count is {}", self.max_count));
        }
        let mut batch = Vec::with_capacity(size as usize);
        for _ in 0..size {
            let timestamp = reader.long()?;
            let mut headers = IndexMap::new();
            for _ in 0..reader.int()? {
                let key = reader.string()?;
                headers.insert(key, reader.string()?);
            }
            batch.push(Record { payload: reader.bytes("payload")?.to_vec(), headers, timestamp });
        }
        Ok((opened_at, batch))
    }

    /// The key's open batch in its cell, if any.
    fn stored(&self, cell: &ValueCell) -> Result<Option<(i64, Vec<Record>)>, StepError> {
        match cell.get()? {
            None => Ok(None),
            Some(bytes) => match self.decode(&bytes) {
                Ok(open) => Ok(Some(open)),
                Err(e) => Err(format!("step '{}' (batch): the key's open batch in cell '{BATCH_CELL}': {e}", self.step_name).into()),
            },
        }
    }

    fn emit_batch(batch: Vec<Record>, emit: &mut Emit) {
        let items: Vec<Value> = batch
            .iter()
            .map(|r| serde_json::from_slice(&r.payload).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.payload).into_owned())))
            .collect();
        let mut headers = batch[0].headers.clone();
        headers.insert(BATCH_SIZE_HEADER.into(), batch.len().to_string());
        emit(Record { payload: json_bytes(&Value::Array(items)), headers, timestamp: batch[batch.len() - 1].timestamp });
    }

    /// A keyed session's record: it joins the key's batch (opening one, with its timers, when none is open), which
    /// closes at `max_count`.
    fn process_keyed(&self, cell: &ValueCell, timers: &TimerService, record: Record, context: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        let (opened_at, mut batch) = match self.stored(cell)? {
            Some(open) => open,
            None => {
                let opened_at = context.current_time_millis();
                timers.set_processing_time(self.closes_at(opened_at))?;
                timers.set_event_time(MAX_WATERMARK)?;
                (opened_at, Vec::new())
            }
        };
        batch.push(record);
        if (batch.len() as i64) < self.max_count {
            cell.set(Self::encode(opened_at, &batch))?;
            return Ok(());
        }
        cell.clear()?;
        timers.delete_processing_time(self.closes_at(opened_at))?;
        timers.delete_event_time(MAX_WATERMARK)?;
        Self::emit_batch(batch, emit);
        Ok(())
    }
}

impl Step for Batch {
    fn process(&mut self, record: Record, context: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        if let Some((cell, timers)) = &self.keyed {
            return self.process_keyed(cell, timers, record, context, emit);
        }
        if !self.batch.is_empty() && self.aged(context) {
            Self::emit_batch(std::mem::take(&mut self.batch), emit);
        }
        if self.batch.is_empty() {
            self.opened_at = context.current_time_millis();
        }
        self.batch.push(record);
        if self.batch.len() as i64 >= self.max_count {
            Self::emit_batch(std::mem::take(&mut self.batch), emit);
        }
        Ok(())
    }

    /// Either timer of the key's batch: the batch (if one is open) is emitted, and the other timer deleted.
    fn on_timer(&mut self, _timestamp: i64, domain: TimeDomain, _: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        let Some((cell, timers)) = &self.keyed else { return Ok(()) };
        let open = self.stored(cell)?;
        match (domain, &open) {
            (TimeDomain::ProcessingTime, _) => timers.delete_event_time(MAX_WATERMARK)?,
            (TimeDomain::EventTime, Some((opened_at, _))) => timers.delete_processing_time(self.closes_at(*opened_at))?,
            (TimeDomain::EventTime, None) => {}
        }
        if let Some((_, batch)) = open {
            cell.clear()?;
            if !batch.is_empty() {
                Self::emit_batch(batch, emit);
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, timestamp: i64, context: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        // In a keyed session the timers close the batches.
        if self.keyed.is_none() && !self.batch.is_empty() && (timestamp == MAX_WATERMARK || self.aged(context)) {
            Self::emit_batch(std::mem::take(&mut self.batch), emit);
        }
        Ok(())
    }

    fn snapshot_state(&self) -> Result<Vec<u8>, String> {
        if self.keyed.is_some() {
            return Ok(Vec::new());
        }
        Ok(Self::encode(self.opened_at, &self.batch))
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), String> {
        self.batch.clear();
        if state.is_empty() {
            return Ok(());
        }
        let (opened_at, batch) = self.decode(state)?;
        if self.keyed.is_some() && !batch.is_empty() {
            // An open batch as whole-instance state comes from a checkpoint taken before batch kept its batches in
            // cells: its records belong to no key here, and dropping them would lose them, so the restore fails.
            return Err(format!(
                "step '{}' (batch): the checkpoint holds an open batch of {} records as whole-instance state: in a keyed session batch keeps each key's open batch in cells (value cell '{BATCH_CELL}') since protocol 6, so such a checkpoint, taken before, cannot be restored into it",
                self.step_name,
                batch.len()
            ));
        }
        if self.keyed.is_none() {
            self.opened_at = opened_at;
            self.batch = batch;
        }
        Ok(())
    }
}

/// The map cell a keyed session's `running_count` keeps its counts in.
const RUNNING_COUNT_CELL: &str = "counts";

/// `running_count`: per key, emits `{"key": K, "count": N}` (with a `key` header) for every record, N counting
/// this one. In a session that is not keyed the counts are the instance's state; in a keyed one (protocol 5) they
/// are cells: the map cell `counts` of the record's (Flink) key holds each of the step's keys that came with it, its
/// UTF-8 bytes to the count as an i64 little-endian, and the instance holds nothing.
struct RunningCount {
    step_name: String,
    key: RecordField,
    /// In a keyed session: where the counts are.
    cell: Option<MapCell>,
    /// In a session that is not keyed: the counts.
    counts: IndexMap<String, i64>,
}

impl RunningCount {
    fn new(config: &StepConfig, context: &BuildContext) -> Result<Self, String> {
        let key = RecordField::from_config(config, "key_", true)?.expect("required");
        let cell = if context.keyed() { Some(context.map_cell(RUNNING_COUNT_CELL)?) } else { None };
        Ok(RunningCount { step_name: config.step_name.to_string(), key, cell, counts: IndexMap::new() })
    }

    /// The key's count in the cell, 0 when it has none.
    fn stored_count(&self, cell: &MapCell, key: &str) -> Result<i64, StepError> {
        match cell.get(key.as_bytes())? {
            None => Ok(0),
            Some(stored) => match <[u8; 8]>::try_from(stored.as_slice()) {
                Ok(bytes) => Ok(i64::from_le_bytes(bytes)),
                Err(_) => Err(format!(
                    "step '{}' (running_count): the count of key '{key}' in cell '{RUNNING_COUNT_CELL}' is {} bytes, not the 8 of an i64 little-endian",
                    self.step_name,
                    stored.len()
                )
                .into()),
            },
        }
    }
}

impl Step for RunningCount {
    fn process(&mut self, record: Record, _: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        let key = self.key.read(&record).ok_or("the record has no key to count by")?;
        let count = match &self.cell {
            Some(cell) => {
                let count = self.stored_count(cell, &key)? + 1;
                cell.put(key.as_bytes(), count.to_le_bytes())?;
                count
            }
            None => {
                let count = self.counts.entry(key.clone()).or_insert(0);
                *count += 1;
                *count
            }
        };
        let payload = json_bytes(&serde_json::json!({"key": key, "count": count}));
        let mut headers = IndexMap::new();
        headers.insert("key".to_string(), key);
        emit(Record { payload, headers, timestamp: record.timestamp });
        Ok(())
    }

    fn snapshot_state(&self) -> Result<Vec<u8>, String> {
        if self.counts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(write_counts(self.counts.iter(), |out, key| write_bytes(out, key.as_bytes())))
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), String> {
        if self.cell.is_some() && !state.is_empty() {
            // Whole-instance counts come from a checkpoint taken before running_count kept them in cells (or of a
            // session that was not keyed): dropping them would restart every count, so the restore fails.
            return Err(format!(
                "step '{}' (running_count): the checkpoint holds its counts as whole-instance state ({} bytes): in a keyed session its counts live in cells (map cell '{RUNNING_COUNT_CELL}') since protocol 5, so such a checkpoint, taken before, cannot be restored into it",
                self.step_name,
                state.len()
            ));
        }
        self.counts = read_counts(state, "running_count", |reader| reader.string())?;
        Ok(())
    }
}

/// `count`: per key, counts records in tumbling event-time windows of `window_ms` and emits
/// `{"key","window_start","window_end","count"}` once the watermark passes a window's end. In a session that is not
/// keyed the open windows are the instance's state, emitted by watermarks. In a keyed one (protocol 6) they run on
/// `window`'s cells and timers (`Window::counting`): the map cell `windows` (entry key: the window start as an i64
/// big-endian, then the key's UTF-8 bytes; value: the count, an i64 little-endian) and an event-time timer at each
/// window's end - 1; the instance holds nothing then, and refuses whole-instance state holding open windows.
struct Count {
    step_name: String,
    window_ms: i64,
    key: Option<RecordField>,
    /// In a session that is not keyed: (window start, key) counted, in the order windows are emitted.
    counts: BTreeMap<(i64, String), i64>,
    /// In a keyed session: the windows, in cells.
    cells: Option<Window>,
}

impl Count {
    fn new(config: &StepConfig, context: &BuildContext) -> Result<Self, String> {
        if config.get("window_ms").is_none() {
            return Err(invalid(config.step_name, "window_ms", "a whole number >= 1", &Value::Null));
        }
        let window_ms = config.positive_long("window_ms", 1)?;
        let key = RecordField::from_config(config, "key_", false)?;
        let cells = if context.keyed() { Some(Window::counting(config.step_name, window_ms, key.clone(), context)?) } else { None };
        Ok(Count { step_name: config.step_name.to_string(), window_ms, key, counts: BTreeMap::new(), cells })
    }
}

impl Step for Count {
    fn process(&mut self, record: Record, context: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        if let Some(cells) = &mut self.cells {
            return cells.process(record, context, emit);
        }
        let key = self.key.as_ref().and_then(|k| k.read(&record)).unwrap_or_default();
        let start = record.timestamp - record.timestamp.rem_euclid(self.window_ms);
        *self.counts.entry((start, key)).or_insert(0) += 1;
        Ok(())
    }

    fn on_timer(&mut self, timestamp: i64, domain: TimeDomain, context: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        match &mut self.cells {
            Some(cells) => cells.on_timer(timestamp, domain, context, emit),
            None => Err(format!("its {} timer at {timestamp} fired, but count sets none in a session that is not keyed", domain.name()).into()),
        }
    }

    /// In a keyed session the timers fire the windows, and the map is empty.
    fn on_watermark(&mut self, timestamp: i64, _: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        while let Some(((start, _), _)) = self.counts.first_key_value() {
            let end = start.saturating_add(self.window_ms);
            if end > timestamp && timestamp != MAX_WATERMARK {
                break;
            }
            let ((start, key), count) = self.counts.pop_first().expect("looked at just now");
            let payload = json_bytes(&serde_json::json!({"key": key, "window_start": start, "window_end": end, "count": count}));
            let mut headers = IndexMap::new();
            headers.insert("key".to_string(), key);
            emit(Record { payload, headers, timestamp: end - 1 });
        }
        Ok(())
    }

    fn snapshot_state(&self) -> Result<Vec<u8>, String> {
        if self.cells.is_some() {
            return Ok(Vec::new());
        }
        Ok(write_counts(self.counts.iter(), |out, (start, key)| {
            out.extend_from_slice(&start.to_be_bytes());
            write_bytes(out, key.as_bytes());
        }))
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), String> {
        let counts: BTreeMap<(i64, String), i64> = read_counts(state, "count", |reader| Ok((reader.long()?, reader.string()?)))?;
        if self.cells.is_some() && !counts.is_empty() {
            // Open windows as whole-instance state come from a checkpoint taken before count kept them in cells: they
            // belong to no key here, and dropping them would lose their counts, so the restore fails.
            return Err(format!(
                "step '{}' (count): the checkpoint holds {} open windows as whole-instance state: in a keyed session count keeps its windows in cells (map cell '{WINDOWS_CELL}') since protocol 6, so such a checkpoint, taken before, cannot be restored into it",
                self.step_name,
                counts.len()
            ));
        }
        self.counts = counts;
        Ok(())
    }
}

/// The counting steps' state: version, number of counts, then each key and its count (big-endian).
fn write_counts<'a, K: 'a>(counts: impl ExactSizeIterator<Item = (&'a K, &'a i64)>, write_key: impl Fn(&mut Vec<u8>, &K)) -> Vec<u8> {
    let mut out = vec![STATE_VERSION];
    out.extend_from_slice(&(counts.len() as i32).to_be_bytes());
    for (key, count) in counts {
        write_key(&mut out, key);
        out.extend_from_slice(&count.to_be_bytes());
    }
    out
}

fn read_counts<K: std::hash::Hash + Ord + Eq, C: FromIterator<(K, i64)>>(
    state: &[u8],
    step: &str,
    read_key: impl Fn(&mut StateReader) -> Result<K, String>,
) -> Result<C, String> {
    if state.is_empty() {
        return Ok(std::iter::empty().collect());
    }
    let mut reader = StateReader::new(state, step);
    reader.version()?;
    let size = reader.int()?;
    (0..size.max(0)).map(|_| Ok((read_key(&mut reader)?, reader.long()?))).collect()
}

/// What `window` computes per window: the records' count, or the sum, least or greatest of their `field`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aggregate {
    Count,
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn name(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
        }
    }

    /// The window's aggregate with one more record's value (a count's is 1); None when a sum overflows.
    fn add(self, current: Option<i64>, value: i64) -> Option<i64> {
        let Some(current) = current else { return Some(value) };
        match self {
            Aggregate::Count | Aggregate::Sum => current.checked_add(value),
            Aggregate::Min => Some(current.min(value)),
            Aggregate::Max => Some(current.max(value)),
        }
    }
}

const WINDOWS_CELL: &str = "windows";
const FIRED_UNTIL_CELL: &str = "fired_until";
const LATE_HEADER: &str = "late";
/// The output field of a user aggregate's result.
const RESULT_FIELD: &str = "result";

/// A `window` step's user aggregate: a Python class the worker hosts, its accumulators kept per pane.
struct UserAggregate {
    hosted: WindowAggregate,
    /// The length of a pane: gcd(size_ms, slide_ms).
    pane_ms: i64,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `window` (protocol 6, a keyed session only): per key K (`key_header` or `key_json_field`), tumbling or sliding
/// event-time windows `[start, start + size_ms)`, `start` a multiple of `slide_ms`, each with an aggregate. Its state
/// is in cells of the record's (Flink) key: the map cell `windows` (entry key: the window start as an i64 big-endian,
/// then K's UTF-8 bytes; value: the aggregate, an i64 little-endian) and the value cell `fired_until` (the timestamp
/// of the key's last firing, an i64 little-endian). A record adds to each of its windows that has not fired and sets
/// an event-time timer at `end - 1 + allowed_lateness_ms`; the firing emits every window of the key that fires then,
/// in entry key order, and removes it. A record none of whose windows is left to fire is late: emitted as it came,
/// with the header `late` naming the step. `count` runs on it in a keyed session (`Window::counting`).
///
/// A user aggregate (`aggregate` a Python class `module.Class`, hosted, python.rs) keeps an accumulator per pane
/// instead, the slice of gcd(size_ms, slide_ms) ms a record falls in, so a record is added once: entry key the pane's
/// start (i64 big-endian) then K, value the accumulator. A window fires with its panes' accumulators merged in pane
/// order (one pane: its accumulator as it is), given to `result`, in the output field `result`; a pane is removed once
/// the last window holding it fired.
struct Window {
    step_name: String,
    /// None for count without a key configured: K is "" then, and for a record without the key.
    key: Option<RecordField>,
    size_ms: i64,
    slide_ms: i64,
    lateness_ms: i64,
    aggregate: Aggregate,
    /// The top-level JSON field a sum, min or max reads.
    field: Option<String>,
    /// The user aggregate, in place of `aggregate`; None for a built-in one.
    user: Option<UserAggregate>,
    windows: MapCell,
    /// None for count, which has no late records: a record adds to its window whether or not it fired.
    fired_until: Option<ValueCell>,
    timers: TimerService,
    /// A record's windows to add to: (start, when its timer fires); kept from record to record.
    open: Vec<(i64, i64)>,
}

impl Window {
    fn new(config: &StepConfig, context: &BuildContext) -> Result<Self, String> {
        let step = config.step_name;
        let key = RecordField::from_config(config, "key_", true)?.expect("required");
        if config.get("size_ms").is_none() {
            return Err(invalid(step, "size_ms", "a whole number >= 1", &Value::Null));
        }
        let size_ms = config.positive_long("size_ms", 1)?;
        let slide_ms = config.positive_long("slide_ms", size_ms)?;
        if slide_ms > size_ms {
            return Err(invalid(step, "slide_ms", &format!("at most size_ms ({size_ms})"), &Value::from(slide_ms)));
        }
        let lateness_ms = config.long_at_least("allowed_lateness_ms", 0, 0)?;
        let (mut aggregate, mut user) = (Aggregate::Count, None);
        match config.string("aggregate")?.as_deref() {
            None | Some("count") => {}
            Some("sum") => aggregate = Aggregate::Sum,
            Some("min") => aggregate = Aggregate::Min,
            Some("max") => aggregate = Aggregate::Max,
            Some(class) if class.contains('.') => {
                if config.get("field").is_some() {
                    return Err(format!("step '{step}': config field is not used with a user aggregate ({class}), whose add() is given the whole record"));
                }
                let hosted = crate::python::window_aggregate(step, class).unwrap_or_else(|| {
                    Err(format!("step '{step}': aggregate {class} is a Python class, which this worker hosts only when started with --python-runtime DIR"))
                })?;
                user = Some(UserAggregate { hosted, pane_ms: gcd(size_ms, slide_ms) });
            }
            Some(other) => return Err(invalid(step, "aggregate", "one of count, sum, min, max or a user class (a name with a dot)", &Value::from(other))),
        }
        let field = config.string("field")?;
        if field.is_none() && aggregate != Aggregate::Count {
            return Err(format!("step '{step}': config field is required for aggregate {}", aggregate.name()));
        }
        Ok(Window {
            step_name: step.to_string(),
            key: Some(key),
            size_ms,
            slide_ms,
            lateness_ms,
            aggregate,
            field,
            user,
            windows: context.map_cell(WINDOWS_CELL)?,
            fired_until: Some(context.value_cell(FIRED_UNTIL_CELL)?),
            timers: context.timers()?,
            open: Vec::new(),
        })
    }

    /// The windows of `count` in a keyed session: tumbling, of `size_ms`, counting records, K the value of `key` (""
    /// when it is None or the record has none), no `fired_until` and no late records. A record behind the watermark
    /// adds to its window (again, if it fired) and sets its timer, which the bridge fires at the next watermark: what
    /// count does with its whole-instance windows.
    fn counting(step_name: &str, size_ms: i64, key: Option<RecordField>, context: &BuildContext) -> Result<Self, String> {
        Ok(Window {
            step_name: step_name.to_string(),
            key,
            size_ms,
            slide_ms: size_ms,
            lateness_ms: 0,
            aggregate: Aggregate::Count,
            field: None,
            user: None,
            windows: context.map_cell(WINDOWS_CELL)?,
            fired_until: None,
            timers: context.timers()?,
            open: Vec::new(),
        })
    }

    /// When the timer of the window starting at `start` fires, or None past the i64 range.
    fn fires_at(&self, start: i64) -> Option<i64> {
        start.checked_add(self.size_ms)?.checked_sub(1)?.checked_add(self.lateness_ms)
    }

    /// The value a record adds: 1 for a count, else its `field`, a JSON integer within 64 bits.
    fn value(&self, record: &Record) -> Result<i64, StepError> {
        let Some(field) = &self.field.as_ref().filter(|_| self.aggregate != Aggregate::Count) else { return Ok(1) };
        let document: Value = serde_json::from_slice(&record.payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
        match document.get(field.as_str()) {
            Some(value) => value.as_i64().ok_or_else(|| format!("field '{field}' is {value}, not an integer that fits 64 bits").into()),
            None => Err(format!("the record has no field '{field}' to {}", self.aggregate.name()).into()),
        }
    }

    /// An i64 little-endian that cell `cell` holds, or an error naming the cell and what it is.
    fn stored(bytes: &[u8], cell: &str, what: &str) -> Result<i64, StepError> {
        <[u8; 8]>::try_from(bytes)
            .map(i64::from_le_bytes)
            .map_err(|_| format!("{what} in cell '{cell}' is {} bytes, not the 8 of an i64 little-endian", bytes.len()).into())
    }
}

/// A window's entry key: its start (i64 big-endian), then the step's key.
fn window_entry(start: i64, key: &str) -> Vec<u8> {
    let mut entry = Vec::with_capacity(8 + key.len());
    entry.extend_from_slice(&start.to_be_bytes());
    entry.extend_from_slice(key.as_bytes());
    entry
}

impl Step for Window {
    fn process(&mut self, mut record: Record, context: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        let key = match self.key.as_ref().and_then(|key| key.read(&record)) {
            Some(key) => key,
            None if self.fired_until.is_none() => String::new(), // count's: no key configured, or the record has none
            None => return Err("the record has no key to window by".into()),
        };
        let value = if self.user.is_some() { 1 } else { self.value(&record)? };
        let fired_until = match self.fired_until.as_ref().map(ValueCell::get).transpose()?.flatten() {
            Some(bytes) => Some(Self::stored(&bytes, FIRED_UNTIL_CELL, "the timestamp of the key's last firing")?),
            None => None,
        };
        // The windows holding the record's timestamp, oldest first, that have not fired for the key.
        let timestamp = record.timestamp;
        let newest = timestamp - timestamp.rem_euclid(self.slide_ms);
        let mut open = std::mem::take(&mut self.open);
        open.clear();
        let mut start = Some(newest);
        while let Some(at) = start.filter(|&s| (timestamp as i128) < s as i128 + self.size_ms as i128) {
            let fires_at = self.fires_at(at).ok_or_else(|| format!("the window of {timestamp} starting at {at} ends past the range of an i64"))?;
            if fired_until.map_or(true, |until| fires_at > until) {
                open.push((at, fires_at));
            }
            start = at.checked_sub(self.slide_ms);
        }
        open.reverse();
        if open.is_empty() {
            self.open = open;
            record.headers.insert(LATE_HEADER.to_string(), self.step_name.clone());
            emit(record);
            return Ok(());
        }
        if let Some(user) = &self.user {
            // The record's pane takes it first, so that a record that fails sets no timer.
            let entry = window_entry(timestamp - timestamp.rem_euclid(user.pane_ms), &key);
            let accumulator = user.hosted.add(self.windows.get(&entry)?, &record, context)?;
            self.windows.put(entry, accumulator)?;
            for &(_, fires_at) in &open {
                self.timers.set_event_time(fires_at)?;
            }
            self.open = open;
            return Ok(());
        }
        // Every new aggregate first, so that a record that fails changes no window.
        let mut updates = Vec::with_capacity(open.len());
        for &(start, _) in &open {
            let entry = window_entry(start, &key);
            let current = match self.windows.get(&entry)? {
                Some(bytes) => Some(Self::stored(&bytes, WINDOWS_CELL, &format!("the {} of key '{key}' in the window starting at {start}", self.aggregate.name()))?),
                None => None,
            };
            let next = self.aggregate.add(current, value).ok_or_else(|| format!("the sum of key '{key}' in the window starting at {start} overflows an i64"))?;
            updates.push((entry, next));
        }
        for ((entry, next), &(_, fires_at)) in updates.into_iter().zip(&open) {
            self.windows.put(entry, next.to_le_bytes())?;
            self.timers.set_event_time(fires_at)?;
        }
        self.open = open;
        Ok(())
    }

    fn on_timer(&mut self, timestamp: i64, domain: TimeDomain, context: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        if domain != TimeDomain::EventTime {
            return Ok(());
        }
        if self.user.is_some() {
            self.fire_panes(timestamp, context, emit)?;
        } else {
            self.fire_windows(timestamp, emit)?;
        }
        let Some(cell) = &self.fired_until else { return Ok(()) };
        let fired_until = match cell.get()? {
            Some(bytes) => Self::stored(&bytes, FIRED_UNTIL_CELL, "the timestamp of the key's last firing")?.max(timestamp),
            None => timestamp,
        };
        cell.set(fired_until.to_le_bytes())?;
        Ok(())
    }
}

impl Window {
    /// Emits and removes each of the key's windows whose timer is at `timestamp`.
    fn fire_windows(&mut self, timestamp: i64, emit: &mut Emit) -> Result<(), StepError> {
        for (entry, stored) in self.windows.entries()? {
            let Some(start) = entry.get(..8).map(|b| i64::from_be_bytes(b.try_into().unwrap())) else {
                return Err(format!("an entry key of {} bytes in cell '{WINDOWS_CELL}', shorter than the 8 of a window start", entry.len()).into());
            };
            if self.fires_at(start) != Some(timestamp) {
                continue;
            }
            let key = String::from_utf8_lossy(&entry[8..]).into_owned();
            let aggregate = Self::stored(&stored, WINDOWS_CELL, &format!("the {} of key '{key}' in the window starting at {start}", self.aggregate.name()))?;
            Self::emit_window(key, start, start + self.size_ms, self.aggregate.name(), &aggregate.to_string(), emit);
            self.windows.remove(&entry)?;
        }
        Ok(())
    }

    /// Emits K's window `[start, end)`: `{"key": K, "window_start": S, "window_end": E, "<field>": V}`, V being the
    /// JSON text `value` (an integer of a built-in aggregate, or a user aggregate's result as the runtime wrote it),
    /// header `key`, timestamp E - 1.
    fn emit_window(key: String, start: i64, end: i64, field: &str, value: &str, emit: &mut Emit) {
        let mut output = Map::new();
        output.insert("key".into(), Value::from(key.clone()));
        output.insert("window_start".into(), Value::from(start));
        output.insert("window_end".into(), Value::from(end));
        let mut payload = json_bytes(&Value::Object(output));
        payload.pop();
        payload.extend_from_slice(format!(r#",{}:{value}}}"#, Value::from(field)).as_bytes());
        let mut headers = IndexMap::new();
        headers.insert("key".to_string(), key);
        emit(Record { payload, headers, timestamp: end - 1 });
    }

    /// A user aggregate's firing of the windows whose timer is at `timestamp` (the one starting at timestamp + 1 -
    /// allowed_lateness_ms - size_ms): for each K with a pane in it, in order of K's bytes, the result of its panes'
    /// accumulators merged in pane order; then the panes whose last window has fired are removed.
    fn fire_panes(&mut self, timestamp: i64, context: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        let user = self.user.as_ref().expect("a user aggregate");
        let start = timestamp as i128 + 1 - self.lateness_ms as i128 - self.size_ms as i128;
        let end = start + self.size_ms as i128;
        let fires = start.rem_euclid(self.slide_ms as i128) == 0 && start >= i64::MIN as i128;
        // K's bytes -> its panes' accumulators, in pane order.
        let mut panes: BTreeMap<Vec<u8>, BTreeMap<i64, Vec<u8>>> = BTreeMap::new();
        let mut spent = Vec::new();
        for (entry, accumulator) in self.windows.entries()? {
            let Some(pane) = entry.get(..8).map(|b| i64::from_be_bytes(b.try_into().unwrap())) else {
                return Err(format!("an entry key of {} bytes in cell '{WINDOWS_CELL}', shorter than the 8 of a pane start", entry.len()).into());
            };
            // The last window holding the pane starts at the pane's start rounded down to a multiple of slide_ms.
            let last = pane as i128 - (pane as i128).rem_euclid(self.slide_ms as i128);
            if last + self.size_ms as i128 - 1 + self.lateness_ms as i128 <= timestamp as i128 {
                spent.push(entry.clone());
            }
            if fires && start <= pane as i128 && (pane as i128) < end {
                panes.entry(entry[8..].to_vec()).or_default().insert(pane, accumulator);
            }
        }
        for (key, accumulators) in panes {
            let mut accumulators = accumulators.into_values();
            let first = accumulators.next().expect("a K with a pane in the window");
            let merged = accumulators.try_fold(first, |merged, next| user.hosted.merge(&merged, &next, context))?;
            let result = user.hosted.result_json(&merged, context)?;
            Self::emit_window(String::from_utf8_lossy(&key).into_owned(), start as i64, end as i64, RESULT_FIELD, &result, emit);
        }
        for entry in spent {
            self.windows.remove(&entry)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A native step with timers, for tests. A record's JSON payload may name timer changes in its field "do",
    /// separated by spaces: `set:e:5` sets an event-time timer at 5 (`p`: processing time), `delete:e:5` deletes one,
    /// `fail` fails the record there; the record is emitted as it came. A firing emits
    /// `{"fired":T,"domain":"e","before":"..."}` (timestamp T; `before`: the timestamps the key's timers fired at
    /// before, its value cell 'fired'), and appends T to 'fired'; config `rearm_ms` makes it set a timer of the same
    /// domain that much later, and `cells: false` keeps no cell. A firing at 666 fails.
    pub(crate) const TIMER_STEP_TYPE: &str = "flink_bridge_worker::tests::TimerStep";

    pub(crate) struct TimerStep {
        timers: TimerService,
        fired: Option<ValueCell>,
        rearm_ms: i64,
    }

    impl TimerStep {
        pub(crate) fn new(config: &Map<String, Value>, context: &BuildContext) -> Result<TimerStep, String> {
            let rearm_ms = config.get("rearm_ms").and_then(Value::as_i64).unwrap_or(0);
            let fired = if config.get("cells") == Some(&Value::Bool(false)) { None } else { Some(context.value_cell("fired")?) };
            Ok(TimerStep { timers: context.timers()?, fired, rearm_ms })
        }
    }

    fn domain_of(letter: &str) -> TimeDomain {
        if letter == "p" { TimeDomain::ProcessingTime } else { TimeDomain::EventTime }
    }

    impl Step for TimerStep {
        fn process(&mut self, record: Record, _: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
            let document: Value = serde_json::from_slice(&record.payload).unwrap_or(Value::Null);
            for command in document.get("do").and_then(Value::as_str).unwrap_or_default().split_whitespace() {
                let parts: Vec<&str> = command.split(':').collect();
                match parts[..] {
                    ["set", domain, at] => self.timers.set(domain_of(domain), at.parse().unwrap())?,
                    ["delete", domain, at] => self.timers.delete(domain_of(domain), at.parse().unwrap())?,
                    ["fail"] => return Err("told to fail".into()),
                    _ => return Err(format!("no command {command}").into()),
                }
            }
            emit(record);
            Ok(())
        }

        fn on_timer(&mut self, timestamp: i64, domain: TimeDomain, _: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
            if timestamp == 666 {
                return Err("told to fail at 666".into());
            }
            let before = match &self.fired {
                Some(fired) => fired.get()?.map(|b| String::from_utf8(b).unwrap()).unwrap_or_default(),
                None => String::new(),
            };
            let letter = if domain == TimeDomain::EventTime { "e" } else { "p" };
            let payload = serde_json::json!({"fired": timestamp, "domain": letter, "before": before});
            emit(Record { payload: json_bytes(&payload), headers: IndexMap::new(), timestamp });
            let fired = if before.is_empty() { timestamp.to_string() } else { format!("{before},{timestamp}") };
            if let Some(cell) = &self.fired {
                cell.set(fired)?;
            }
            if self.rearm_ms > 0 {
                self.timers.set(domain, timestamp + self.rearm_ms)?;
            }
            Ok(())
        }
    }
}
