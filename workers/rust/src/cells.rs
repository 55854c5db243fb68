//! Cells: per-key state that steps declare when they are built and the bridge keeps in Flink's keyed state
//! (docs/protocol.md, "Cells: per-key state in Flink's keyed state"). A session holds the cells of the keys the
//! bridge loaded into it (its resident keys, LOAD), its steps read and write the current record's key's cells in
//! memory through their handles (`ValueCell`, `MapCell`), and each BARRIER takes what changed since the last one
//! as `CELL_WRITES` (each key's with the bytes its cells take, `resident_bytes`), then drops the keys it evicts.
//!
//! One store per session, shared by every handle its steps hold (of every key group's instance): a handle reaches
//! the key the session made current for the record being handled, and nothing else; used at any other time, it
//! fails naming its step and cell. A cell with a TTL keeps, before each value (each map entry's value), the i64
//! little-endian processing time of the input that wrote it, as it goes on the wire; a value whose time plus the
//! TTL is at or before the current time is absent to the step.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prost::Message;

use crate::proto::{self, CellOp, CellWrite, KeyCells};
use crate::step::StepError;
use crate::timers::{TimerService, Timers};

/// A record's key: the bytes the pipeline's key extracts, opaque to the worker.
pub type Key = Vec<u8>;

/// The bytes of a TTL cell's write time, before each value.
pub const WRITE_TIME_BYTES: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    Value,
    Map,
}

/// A cell as its step declared it; its index among the session's declarations is its id on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declaration {
    pub step: String,
    pub name: String,
    pub kind: CellKind,
    /// 0: no TTL.
    pub ttl_ms: i64,
}

impl Declaration {
    pub fn to_proto(&self) -> proto::CellDeclaration {
        let kind = match self.kind {
            CellKind::Value => proto::CellKind::Value,
            CellKind::Map => proto::CellKind::Map,
        };
        proto::CellDeclaration { step: self.step.clone(), name: self.name.clone(), kind: kind as i32, ttl_ms: self.ttl_ms }
    }

    fn describe(&self) -> String {
        format!("step '{}' cell '{}'", self.step, self.name)
    }
}

/// Why a step's use of a cell failed: it names the step and the cell. A step's `?` makes it the step's error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellError(pub String);

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CellError {}

impl From<CellError> for StepError {
    fn from(error: CellError) -> StepError {
        error.0.into()
    }
}

impl From<CellError> for String {
    fn from(error: CellError) -> String {
        error.0
    }
}

/// A key as an error text names it: its text when it is short printable UTF-8, else its bytes in hex.
pub fn describe_key(key: &[u8]) -> String {
    const SHOWN: usize = 64;
    match std::str::from_utf8(key) {
        Ok(text) if key.len() <= SHOWN && !text.chars().any(char::is_control) => format!("'{text}'"),
        _ => {
            let hex: String = key.iter().take(SHOWN / 2).map(|b| format!("{b:02x}")).collect();
            let more = if key.len() > SHOWN / 2 { "…" } else { "" };
            format!("0x{hex}{more} ({} bytes)", key.len())
        }
    }
}

/// One cell's content for one key, as it goes on the wire (a TTL cell's values with their write time).
#[derive(Clone, Debug, PartialEq)]
enum Content {
    Value(Option<Vec<u8>>),
    Map(BTreeMap<Vec<u8>, Vec<u8>>),
}

/// What changed in one cell since the last barrier.
#[derive(Clone, Debug, Default)]
struct Change {
    touched: bool,
    /// A map emptied: its CLEAR comes before the writes of its entries.
    cleared: bool,
    /// A map's entries put or removed (after its clear, if any): each written as it is at the barrier.
    entries: BTreeSet<Vec<u8>>,
}

/// A resident key's cells, in declaration order.
struct Resident {
    contents: Vec<Content>,
    changes: Vec<Change>,
    /// What its cells take, as `resident_bytes` counts it: every stored value, entry key and entry value (a TTL
    /// cell's values with their write time); kept as they change.
    bytes: usize,
}

impl Resident {
    fn empty(declarations: &[Declaration]) -> Resident {
        let contents = declarations
            .iter()
            .map(|d| match d.kind {
                CellKind::Value => Content::Value(None),
                CellKind::Map => Content::Map(BTreeMap::new()),
            })
            .collect();
        Resident { contents, changes: vec![Change::default(); declarations.len()], bytes: 0 }
    }
}

/// Sets a value cell's stored value (None: cleared), keeping `bytes`.
fn set_value(slot: &mut Option<Vec<u8>>, value: Option<Vec<u8>>, bytes: &mut usize) {
    *bytes -= slot.as_ref().map_or(0, Vec::len);
    *bytes += value.as_ref().map_or(0, Vec::len);
    *slot = value;
}

/// Puts a map cell's entry (its value as stored), keeping `bytes`.
fn put_entry(entries: &mut BTreeMap<Vec<u8>, Vec<u8>>, key: &[u8], value: Vec<u8>, bytes: &mut usize) {
    *bytes += value.len();
    match entries.get_mut(key) {
        Some(old) => *bytes -= std::mem::replace(old, value).len(),
        None => {
            *bytes += key.len();
            entries.insert(key.to_vec(), value);
        }
    }
}

/// Removes a map cell's entry, keeping `bytes`.
fn remove_entry(entries: &mut BTreeMap<Vec<u8>, Vec<u8>>, key: &[u8], bytes: &mut usize) {
    if let Some(old) = entries.remove(key) {
        *bytes -= key.len() + old.len();
    }
}

/// Empties a map cell, keeping `bytes`.
fn clear_entries(entries: &mut BTreeMap<Vec<u8>, Vec<u8>>, bytes: &mut usize) {
    *bytes -= entries.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    entries.clear();
}

/// Returns the free pages of the C heap to the system: glibc's malloc gives back by itself only what lies at the top
/// of an arena, and evicting the keys a load of every key brought frees the bulk of the heap below the keys kept. It
/// takes about a millisecond after a steady round's evictions, tens after a load of every key.
fn give_back_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases pages that no allocation holds.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[derive(Default)]
struct Store {
    declarations: Vec<Declaration>,
    /// The first build of the session's steps is over: later builds (an instance per key group) must declare the
    /// same cells, and get the same ids.
    fixed: bool,
    /// During a later build: the index of the next declaration expected.
    cursor: usize,
    resident: HashMap<Key, Resident>,
    /// The resident keys with changes since the last barrier.
    dirty: BTreeSet<Key>,
    /// The key of the record being handled, and the processing time its cells are read at.
    current: Option<(Key, i64)>,
}

impl Store {
    fn declaration(&self, id: usize) -> &Declaration {
        &self.declarations[id]
    }
}

/// A session's cells: declarations, resident keys and their changes. Cloning shares them.
#[derive(Clone, Default)]
pub struct Cells {
    store: Arc<Mutex<Store>>,
}

impl Cells {
    pub fn new() -> Cells {
        Cells::default()
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // No step code runs while it is held: a panic cannot leave it half changed.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every cell the session's steps declared, in step order then declaration order (their ids).
    pub fn declarations(&self) -> Vec<Declaration> {
        self.lock().declarations.clone()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().declarations.is_empty()
    }

    /// The steps of an instance are about to be built (each one's cells declared with a `BuildContext`).
    pub fn begin_build(&self) {
        self.lock().cursor = 0;
    }

    /// The steps of an instance are built: a later build must have declared every cell the first did.
    pub fn end_build(&self) -> Result<(), String> {
        let mut store = self.lock();
        if store.fixed && store.cursor != store.declarations.len() {
            let missing = store.declaration(store.cursor).clone();
            return Err(format!("{} was declared when the steps were first built, but not when built again: a step must declare the same cells every time", missing.describe()));
        }
        store.fixed = true;
        Ok(())
    }

    fn declare(&self, step: &str, name: &str, kind: CellKind, ttl_ms: i64) -> Result<usize, String> {
        if ttl_ms < 0 {
            return Err(format!("step '{step}' cell '{name}': a TTL of {ttl_ms} ms; give one above 0, or 0 for none"));
        }
        let declaration = Declaration { step: step.into(), name: name.into(), kind, ttl_ms };
        let mut store = self.lock();
        if store.fixed {
            let id = store.cursor;
            if store.declarations.get(id) != Some(&declaration) {
                let first = store.declarations.get(id).map_or_else(|| "nothing more".to_string(), |d| format!("{} ({:?}, ttl_ms {})", d.describe(), d.kind, d.ttl_ms));
                return Err(format!(
                    "{} ({kind:?}, ttl_ms {ttl_ms}) is declared where the steps' first build declared {first}: a step must declare the same cells every time",
                    declaration.describe()
                ));
            }
            store.cursor += 1;
            return Ok(id);
        }
        if store.declarations.iter().any(|d| d.step == step && d.name == name) {
            return Err(format!("step '{step}' declares cell '{name}' twice: a cell's name is unique within its step"));
        }
        store.declarations.push(declaration);
        Ok(store.declarations.len() - 1)
    }

    #[cfg(test)]
    pub fn is_resident(&self, key: &[u8]) -> bool {
        self.lock().resident.contains_key(key)
    }

    /// A LOAD: the first of an input makes the key resident with exactly its contents (whatever was held for it
    /// dropped, its changes too); a further one of the same input adds its cells and entries.
    pub fn load(&self, loaded: KeyCells, first: bool) -> Result<(), String> {
        let mut store = self.lock();
        let key = loaded.key.to_vec();
        if !loaded.writes.is_empty() {
            return Err(format!("the LOAD of key {} carries cell writes, which only a worker sends", describe_key(&key)));
        }
        let count = store.declarations.len();
        if first {
            let empty = Resident::empty(&store.declarations);
            store.resident.insert(key.clone(), empty);
            store.dirty.remove(&key);
        }
        let store = &mut *store;
        let Some(resident) = store.resident.get_mut(&key) else {
            return Err(format!("a further LOAD of key {} before its first", describe_key(&key)));
        };
        for content in loaded.cells {
            let id = content.cell as usize;
            let Some(declaration) = store.declarations.get(id) else {
                return Err(format!("the LOAD of key {} names cell {id}, but the session's steps declare {count} cells", describe_key(&key)));
            };
            let bad = |what: &str| format!("the LOAD of key {} gives {} {what}", describe_key(&key), declaration.describe());
            let timed = |value: &[u8]| {
                if declaration.ttl_ms > 0 && value.len() < WRITE_TIME_BYTES {
                    Err(bad(&format!("a value of {} bytes, without the write time a cell with a TTL keeps before each value", value.len())))
                } else {
                    Ok(value.to_vec())
                }
            };
            let bytes = &mut resident.bytes;
            match &mut resident.contents[id] {
                Content::Value(value) => {
                    if !content.entries.is_empty() {
                        return Err(bad("map entries, but it is a value cell"));
                    }
                    if let Some(loaded) = &content.value {
                        set_value(value, Some(timed(loaded)?), bytes);
                    }
                }
                Content::Map(entries) => {
                    if content.value.is_some() {
                        return Err(bad("a value, but it is a map cell"));
                    }
                    for entry in &content.entries {
                        put_entry(entries, &entry.key, timed(&entry.value)?, bytes);
                    }
                }
            }
        }
        Ok(())
    }

    /// The record being handled has this key: its cells are the ones the handles reach, read at `now` (processing
    /// time, ms). A key that is not resident is an error, when the steps declare cells.
    pub fn enter(&self, key: &[u8], now: i64) -> Result<(), String> {
        self.enter_with(key, now, |key| format!("the record's key {key} is not resident: no LOAD of it came in this session, and a record's cells are loaded before it"))
    }

    /// A timer of this key fires: as `enter`, for the firing (docs/protocol.md, "Timers").
    pub fn enter_firing(&self, key: &[u8], now: i64) -> Result<(), String> {
        self.enter_with(key, now, |key| format!("the key {key} of a TIMER is not resident: no LOAD of it came in this session, and a firing timer's key's cells are loaded before it"))
    }

    fn enter_with(&self, key: &[u8], now: i64, not_resident: impl FnOnce(&str) -> String) -> Result<(), String> {
        let mut store = self.lock();
        if !store.declarations.is_empty() && !store.resident.contains_key(key) {
            return Err(not_resident(&describe_key(key)));
        }
        store.current = Some((key.to_vec(), now));
        Ok(())
    }

    /// The record is handled: the handles reach no key until the next.
    pub fn leave(&self) {
        self.lock().current = None;
    }

    /// `read` of the key of the input being handled (a keyed record or a firing), None outside one: what a hosted
    /// Python step's `current_key()` gives (python.rs).
    pub fn with_current_key<R>(&self, read: impl FnOnce(Option<&[u8]>) -> R) -> R {
        read(self.lock().current.as_ref().map(|(key, _)| key.as_slice()))
    }

    /// What changed since the last barrier, one KeyCells per key in key order, writes in the order to apply them,
    /// with the bytes the key's cells take after them (`resident_bytes`); every cell is clean after.
    pub fn take_writes(&self) -> Vec<KeyCells> {
        let mut store = self.lock();
        let store = &mut *store;
        let mut taken = Vec::with_capacity(store.dirty.len());
        for key in std::mem::take(&mut store.dirty) {
            let Some(resident) = store.resident.get_mut(&key) else { continue };
            let mut writes = Vec::new();
            for (id, (content, change)) in resident.contents.iter().zip(resident.changes.iter_mut()).enumerate() {
                let change = std::mem::take(change);
                if !change.touched {
                    continue;
                }
                let write = |op: CellOp, value: &[u8], entry_key: &[u8]| CellWrite {
                    cell: id as u32,
                    op: op as i32,
                    value: value.to_vec().into(),
                    entry_key: entry_key.to_vec().into(),
                };
                match content {
                    Content::Value(Some(value)) => writes.push(write(CellOp::Set, value, b"")),
                    Content::Value(None) => writes.push(write(CellOp::Clear, b"", b"")),
                    Content::Map(entries) => {
                        if change.cleared {
                            writes.push(write(CellOp::Clear, b"", b""));
                        }
                        for entry_key in &change.entries {
                            match entries.get(entry_key) {
                                Some(value) => writes.push(write(CellOp::Put, value, entry_key)),
                                // After a clear the entry is gone already.
                                None if !change.cleared => writes.push(write(CellOp::Remove, b"", entry_key)),
                                None => {}
                            }
                        }
                    }
                }
            }
            if !writes.is_empty() {
                taken.push(KeyCells { key: key.into(), cells: Vec::new(), writes, resident_bytes: resident.bytes as u64 });
            }
        }
        taken
    }

    /// A barrier's evictions, once its writes are taken: drops these keys' cells (a key not resident is ignored), so
    /// that a record of one needs a LOAD again. What they took then goes back to the system: the resident keys'
    /// table shrinks once at most a quarter of it is in use (it never does by itself, and after the evictions that
    /// follow a load of every key it would keep a slot for each), and the C heap's free pages are released.
    pub fn evict(&self, keys: &[Key]) {
        let mut store = self.lock();
        let mut dropped = false;
        for key in keys {
            dropped |= store.resident.remove(key).is_some();
            // Clean, as the bridge evicts only keys no input touched since the previous barrier; were one not, its
            // changes would go with it rather than into a later barrier's writes to a key not resident.
            store.dirty.remove(key);
        }
        if !dropped {
            return;
        }
        if store.resident.len() <= store.resident.capacity() / 4 {
            store.resident.shrink_to_fit();
        }
        drop(store);
        give_back_freed();
    }

    /// The bytes the resident key's cells take, counted from scratch (tests check the kept count against it).
    #[cfg(test)]
    fn counted_bytes(&self, key: &[u8]) -> Option<usize> {
        let store = self.lock();
        let resident = store.resident.get(key)?;
        let counted = resident
            .contents
            .iter()
            .map(|content| match content {
                Content::Value(value) => value.as_ref().map_or(0, Vec::len),
                Content::Map(entries) => entries.iter().map(|(k, v)| k.len() + v.len()).sum(),
            })
            .sum();
        assert_eq!(resident.bytes, counted, "the bytes kept for key {}", describe_key(key));
        Some(counted)
    }

    /// Runs `access` on cell `id` of the current key, with the current time and the cell's TTL; `writes` marks the
    /// key changed.
    fn access<R>(&self, id: usize, operation: &str, writes: bool, access: impl FnOnce(&mut Content, &mut Change, &mut usize, i64, i64) -> R) -> Result<R, CellError> {
        let mut store = self.lock();
        let store = &mut *store;
        let declaration = &store.declarations[id];
        let Some((key, now)) = &store.current else {
            return Err(CellError(format!(
                "{}: {operation} outside the handling of a record: a cell belongs to the key of the record being handled, so it is read and written only then (not when the step is built, on a watermark or at a checkpoint)",
                declaration.describe()
            )));
        };
        let Some(resident) = store.resident.get_mut(key) else {
            return Err(CellError(format!("{}: {operation}: the record's key {} is not resident", declaration.describe(), describe_key(key))));
        };
        if writes && !store.dirty.contains(key) {
            store.dirty.insert(key.clone());
        }
        Ok(access(&mut resident.contents[id], &mut resident.changes[id], &mut resident.bytes, *now, declaration.ttl_ms))
    }

    fn describe(&self, id: usize) -> String {
        self.lock().declaration(id).describe()
    }

    /// The id of the cell of this name and kind, for the harness (whose one step declares them all).
    #[cfg(test)]
    fn named(&self, name: &str, kind: CellKind) -> Result<usize, String> {
        let store = self.lock();
        match store.declarations.iter().position(|d| d.name == name) {
            Some(id) if store.declarations[id].kind == kind => Ok(id),
            Some(id) => Err(format!("{} is a {:?} cell, not a {kind:?} cell", store.declarations[id].describe(), store.declarations[id].kind)),
            None => Err(format!("the step declares no cell '{name}'")),
        }
    }

    #[cfg(test)]
    pub fn value_cell_named(&self, name: &str) -> Result<ValueCell, String> {
        Ok(ValueCell { cells: self.clone(), id: self.named(name, CellKind::Value)? })
    }

    #[cfg(test)]
    pub fn map_cell_named(&self, name: &str) -> Result<MapCell, String> {
        Ok(MapCell { cells: self.clone(), id: self.named(name, CellKind::Map)? })
    }
}

/// A stored value as the step sees it: without its write time, or None once expired.
fn live(stored: &[u8], now: i64, ttl_ms: i64) -> Option<&[u8]> {
    if ttl_ms <= 0 {
        return Some(stored);
    }
    let written = i64::from_le_bytes(stored[..WRITE_TIME_BYTES].try_into().expect("a TTL cell's values hold their write time"));
    (written.saturating_add(ttl_ms) > now).then(|| &stored[WRITE_TIME_BYTES..])
}

/// A step's value as it is stored: behind its write time when the cell has a TTL.
fn stored(value: &[u8], now: i64, ttl_ms: i64) -> Vec<u8> {
    if ttl_ms <= 0 {
        return value.to_vec();
    }
    let mut out = Vec::with_capacity(WRITE_TIME_BYTES + value.len());
    out.extend_from_slice(&now.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// What a step is given while it is built: its name, whether the session's stream is keyed, and the declaration of
/// its cells and timers (docs/rust-worker.md, "Cells", "Timers"). A cell declared here is the step's for the session;
/// its handle reaches the current record's key's, as its timers are the current input's key's.
#[derive(Clone)]
pub struct BuildContext {
    cells: Cells,
    step: String,
    keyed: bool,
    timers: Timers,
    /// The step's index in the session's StepSpec list, as TIMER and TIMERS frames name it.
    index: u32,
}

// The API of native steps: of the built-in steps running_count declares a map cell, batch a value cell and timers and
// count a map cell and timers (in a keyed session), window a map and a value cell and timers.
#[allow(dead_code)]
impl BuildContext {
    /// `keyed`: the session's stream is keyed (`OpenSessionRequest.keyed`), so its records come with their keys and
    /// its steps may keep cells.
    pub fn new(cells: Cells, step: &str, keyed: bool) -> BuildContext {
        BuildContext { cells, step: step.to_string(), keyed, timers: Timers::new(), index: 0 }
    }

    /// The same, for step `index` of a session whose timers are `timers`.
    pub fn with_timers(self, timers: Timers, index: u32) -> BuildContext {
        BuildContext { timers, index, ..self }
    }

    /// Declares that the step sets timers (docs/protocol.md, "Timers"): its handle sets and deletes timers of the
    /// key of the input being handled, and the step's `on_timer` runs when one fires. A session that is not keyed
    /// refuses a step that declares them.
    pub fn timers(&self) -> Result<TimerService, String> {
        self.timers.declare(&self.step, self.index)
    }

    pub fn step_name(&self) -> &str {
        &self.step
    }

    /// The session's cells, which know the key of the input being handled.
    pub fn cells(&self) -> &Cells {
        &self.cells
    }

    /// Whether the session's stream is keyed: a step that keeps its state in cells when it can (running_count) keeps
    /// it in the instance otherwise, as a session that is not keyed refuses steps with cells.
    pub fn keyed(&self) -> bool {
        self.keyed
    }

    /// A value cell without TTL.
    pub fn value_cell(&self, name: &str) -> Result<ValueCell, String> {
        self.value_cell_with_ttl(name, 0)
    }

    /// A value cell whose value is gone `ttl_ms` ms (processing time) after it was written; 0: never.
    pub fn value_cell_with_ttl(&self, name: &str, ttl_ms: i64) -> Result<ValueCell, String> {
        let id = self.cells.declare(&self.step, name, CellKind::Value, ttl_ms)?;
        Ok(ValueCell { cells: self.cells.clone(), id })
    }

    /// A map cell (byte keys to byte values) without TTL.
    pub fn map_cell(&self, name: &str) -> Result<MapCell, String> {
        self.map_cell_with_ttl(name, 0)
    }

    /// A map cell each of whose entries is gone `ttl_ms` ms (processing time) after it was written; 0: never.
    pub fn map_cell_with_ttl(&self, name: &str, ttl_ms: i64) -> Result<MapCell, String> {
        let id = self.cells.declare(&self.step, name, CellKind::Map, ttl_ms)?;
        Ok(MapCell { cells: self.cells.clone(), id })
    }
}

/// A step's value cell: the current record's key's value.
#[derive(Clone)]
pub struct ValueCell {
    cells: Cells,
    id: usize,
}

impl ValueCell {
    /// The value, or None when there is none (or it expired).
    pub fn get(&self) -> Result<Option<Vec<u8>>, CellError> {
        self.cells.access(self.id, "get()", false, |content, _, _, now, ttl| match content {
            Content::Value(value) => value.as_deref().and_then(|v| live(v, now, ttl)).map(<[u8]>::to_vec),
            Content::Map(_) => unreachable!("a value cell's content"),
        })
    }

    pub fn set(&self, value: impl AsRef<[u8]>) -> Result<(), CellError> {
        self.cells.access(self.id, "set()", true, |content, change, bytes, now, ttl| {
            set_value(slot(content), Some(stored(value.as_ref(), now, ttl)), bytes);
            change.touched = true;
        })
    }

    pub fn clear(&self) -> Result<(), CellError> {
        self.cells.access(self.id, "clear()", true, |content, change, bytes, _, _| {
            set_value(slot(content), None, bytes);
            change.touched = true;
        })
    }

    /// "step 's' cell 'n'".
    pub fn describe(&self) -> String {
        self.cells.describe(self.id)
    }
}

/// A step's map cell: the current record's key's map of byte keys to byte values.
#[derive(Clone)]
pub struct MapCell {
    cells: Cells,
    id: usize,
}

fn slot(content: &mut Content) -> &mut Option<Vec<u8>> {
    match content {
        Content::Value(value) => value,
        Content::Map(_) => unreachable!("a value cell's content"),
    }
}

fn map(content: &mut Content) -> &mut BTreeMap<Vec<u8>, Vec<u8>> {
    match content {
        Content::Map(entries) => entries,
        Content::Value(_) => unreachable!("a map cell's content"),
    }
}

impl MapCell {
    /// The entry's value, or None when there is none (or it expired).
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, CellError> {
        self.cells.access(self.id, "get()", false, |content, _, _, now, ttl| map(content).get(key.as_ref()).and_then(|v| live(v, now, ttl)).map(<[u8]>::to_vec))
    }

    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), CellError> {
        self.cells.access(self.id, "put()", true, |content, change, bytes, now, ttl| {
            put_entry(map(content), key.as_ref(), stored(value.as_ref(), now, ttl), bytes);
            change.touched = true;
            change.entries.insert(key.as_ref().to_vec());
        })
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), CellError> {
        self.cells.access(self.id, "remove()", true, |content, change, bytes, _, _| {
            remove_entry(map(content), key.as_ref(), bytes);
            change.touched = true;
            change.entries.insert(key.as_ref().to_vec());
        })
    }

    /// Empties the map.
    pub fn clear(&self) -> Result<(), CellError> {
        self.cells.access(self.id, "clear()", true, |content, change, bytes, _, _| {
            clear_entries(map(content), bytes);
            *change = Change { touched: true, cleared: true, entries: BTreeSet::new() };
        })
    }

    /// Every entry that has not expired, in key order (bytes compared).
    pub fn entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, CellError> {
        self.cells.access(self.id, "entries()", false, |content, _, _, now, ttl| {
            map(content).iter().filter_map(|(k, v)| live(v, now, ttl).map(|v| (k.clone(), v.to_vec()))).collect()
        })
    }

    pub fn describe(&self) -> String {
        self.cells.describe(self.id)
    }
}

/// The cell writes of one key cut into KeyCells whose encoding is at most `target` bytes, each but one holding as
/// many writes as fit; one write that does not fit `target` alone goes alone when within `max` bytes, else the
/// error names the key, the cell and the size. The writes keep their order; every piece has the key's resident_bytes.
pub fn split(key_cells: KeyCells, target: usize, max: usize) -> Result<Vec<KeyCells>, String> {
    // Each piece carries the key's resident_bytes.
    let empty = KeyCells { key: key_cells.key.clone(), cells: Vec::new(), writes: Vec::new(), resident_bytes: key_cells.resident_bytes };
    let base = empty.encoded_len();
    let mut pieces = Vec::new();
    let (mut piece, mut size) = (empty.clone(), base);
    for write in key_cells.writes {
        let length = prost::encoding::message::encoded_len(3, &write);
        if size + length > target && !piece.writes.is_empty() {
            pieces.push(std::mem::replace(&mut piece, empty.clone()));
            size = base;
        }
        if base + length > max {
            return Err(format!(
                "a write of key {} (cell {}) takes {} bytes, more than a frame holds ({max} bytes)",
                describe_key(&key_cells.key),
                write.cell,
                base + length
            ));
        }
        size += length;
        piece.writes.push(write);
    }
    if !piece.writes.is_empty() {
        pieces.push(piece);
    }
    Ok(pieces)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::{CellContent, CellEntry};
    use crate::record::Record;
    use crate::step::{Emit, Step, StepContext};

    /// A native step with cells, for tests: a value cell 'total' (the records of the key, as decimal text) and a
    /// map cell 'seen' (each payload to the total when it last came; config `ttl_ms` gives it a TTL). A record
    /// "clear" empties both. Each record is answered "total=N seen=payload=N,..." ("total=N" alone with config
    /// `list_seen: false`). A watermark of 42 reads 'total' (which fails: no record is being handled).
    pub(crate) const CELL_COUNTER_TYPE: &str = "flink_bridge_worker::tests::CellCounter";

    pub(crate) struct CellCounter {
        total: ValueCell,
        seen: MapCell,
        list_seen: bool,
    }

    impl CellCounter {
        pub(crate) fn new(config: &serde_json::Map<String, serde_json::Value>, context: &BuildContext) -> Result<CellCounter, String> {
            let ttl_ms = config.get("ttl_ms").and_then(serde_json::Value::as_i64).unwrap_or(0);
            let list_seen = config.get("list_seen").and_then(serde_json::Value::as_bool).unwrap_or(true);
            Ok(CellCounter { total: context.value_cell("total")?, seen: context.map_cell_with_ttl("seen", ttl_ms)?, list_seen })
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    impl Step for CellCounter {
        fn process(&mut self, record: Record, _: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
            let total = if record.payload == b"clear" {
                self.total.clear()?;
                self.seen.clear()?;
                0
            } else {
                let total = self.total.get()?.map_or(0, |t| text(&t).parse::<u64>().unwrap()) + 1;
                self.total.set(total.to_string())?;
                self.seen.put(&record.payload, total.to_string())?;
                total
            };
            let mut payload = format!("total={total}");
            if self.list_seen {
                let seen: Vec<String> = self.seen.entries()?.iter().map(|(k, v)| format!("{}={}", text(k), text(v))).collect();
                payload = format!("{payload} seen={}", seen.join(","));
            }
            emit(Record { payload: payload.into_bytes(), ..record });
            Ok(())
        }

        fn on_watermark(&mut self, timestamp: i64, _: &StepContext, _: &mut Emit) -> Result<(), StepError> {
            if timestamp == 42 {
                self.total.get()?;
            }
            Ok(())
        }
    }

    pub(crate) fn content_value(cell: u32, value: &[u8]) -> CellContent {
        CellContent { cell, value: Some(value.to_vec().into()), entries: Vec::new() }
    }

    pub(crate) fn content_entries(cell: u32, entries: &[(&[u8], &[u8])]) -> CellContent {
        let entries = entries.iter().map(|(k, v)| CellEntry { key: k.to_vec().into(), value: v.to_vec().into() }).collect();
        CellContent { cell, value: None, entries }
    }

    pub(crate) fn load_of(key: &[u8], cells: Vec<CellContent>) -> KeyCells {
        KeyCells { key: key.to_vec().into(), cells, writes: Vec::new(), resident_bytes: 0 }
    }

    /// The writes of a KeyCells as (cell, op, entry key, value), readable in assertions.
    pub(crate) fn ops(key_cells: &KeyCells) -> Vec<(u32, CellOp, Vec<u8>, Vec<u8>)> {
        key_cells.writes.iter().map(|w| (w.cell, CellOp::from_i32(w.op).unwrap(), w.entry_key.to_vec(), w.value.to_vec())).collect()
    }

    /// Cells of one step 's': a value cell 'v' (id 0) and a map cell 'm' (id 1), each with `ttl_ms`.
    fn declared(ttl_ms: i64) -> (Cells, ValueCell, MapCell) {
        let cells = Cells::new();
        cells.begin_build();
        let context = BuildContext::new(cells.clone(), "s", true);
        let value = context.value_cell_with_ttl("v", ttl_ms).unwrap();
        let map = context.map_cell_with_ttl("m", ttl_ms).unwrap();
        cells.end_build().unwrap();
        (cells, value, map)
    }

    fn timed(time: i64, value: &[u8]) -> Vec<u8> {
        [&time.to_le_bytes()[..], value].concat()
    }

    #[test]
    fn declarations_are_numbered_in_order_and_a_later_build_must_declare_the_same() {
        let (cells, _, _) = declared(0);
        assert_eq!(cells.declarations().iter().map(|d| (d.name.as_str(), d.kind)).collect::<Vec<_>>(), [("v", CellKind::Value), ("m", CellKind::Map)]);
        cells.begin_build();
        let again = BuildContext::new(cells.clone(), "s", true);
        assert_eq!(again.value_cell("v").unwrap().id, 0);
        let error = again.value_cell("other").err().unwrap();
        assert!(error.contains("step 's' cell 'other' (Value, ttl_ms 0) is declared where the steps' first build declared step 's' cell 'm'"), "{error}");
        cells.begin_build();
        again.value_cell("v").unwrap();
        assert!(cells.end_build().unwrap_err().contains("step 's' cell 'm' was declared when the steps were first built, but not when built again"));

        let fresh = Cells::new();
        let context = BuildContext::new(fresh.clone(), "t", true);
        context.map_cell("x").unwrap();
        assert_eq!(context.value_cell("x").err().unwrap(), "step 't' declares cell 'x' twice: a cell's name is unique within its step");
        assert!(context.value_cell_with_ttl("y", -1).err().unwrap().contains("a TTL of -1 ms"));
    }

    #[test]
    fn cells_are_reached_only_while_a_record_of_a_resident_key_is_handled() {
        let (cells, value, _) = declared(0);
        let error = value.get().unwrap_err().0;
        assert!(error.starts_with("step 's' cell 'v': get() outside the handling of a record"), "{error}");
        assert!(cells.enter(b"k", 0).unwrap_err().contains("the record's key 'k' is not resident"));
        cells.load(load_of(b"k", vec![content_value(0, b"one")]), true).unwrap();
        cells.enter(b"k", 0).unwrap();
        assert_eq!(value.get().unwrap(), Some(b"one".to_vec()));
        cells.leave();
        assert!(value.set(b"x").is_err());
    }

    #[test]
    fn a_first_load_replaces_what_the_key_held_and_a_further_one_adds() {
        let (cells, value, map) = declared(0);
        cells.load(load_of(b"k", vec![content_value(0, b"old"), content_entries(1, &[(b"a", b"1")])]), true).unwrap();
        cells.enter(b"k", 0).unwrap();
        map.put(b"b", b"2").unwrap();
        cells.leave();
        cells.load(load_of(b"k", vec![content_entries(1, &[(b"c", b"3")])]), true).unwrap();
        cells.load(load_of(b"k", vec![content_entries(1, &[(b"d", b"4")])]), false).unwrap();
        cells.enter(b"k", 0).unwrap();
        assert_eq!(value.get().unwrap(), None);
        assert_eq!(map.entries().unwrap(), [(b"c".to_vec(), b"3".to_vec()), (b"d".to_vec(), b"4".to_vec())]);
        cells.leave();
        assert!(cells.take_writes().is_empty(), "the change before the reload is not dropped");
    }

    #[test]
    fn a_load_that_does_not_match_the_declarations_is_refused() {
        let (cells, _, _) = declared(5);
        let refused = |content: CellContent| cells.load(load_of(b"k", vec![content]), true).unwrap_err();
        assert!(refused(content_value(2, b"x")).contains("names cell 2, but the session's steps declare 2 cells"));
        assert!(refused(content_entries(0, &[(b"a", b"12345678")])).contains("gives step 's' cell 'v' map entries, but it is a value cell"));
        assert!(refused(content_value(1, b"12345678")).contains("gives step 's' cell 'm' a value, but it is a map cell"));
        assert!(refused(content_value(0, b"1234567")).contains("a value of 7 bytes, without the write time"));
        let mut with_writes = load_of(b"k", Vec::new());
        with_writes.writes.push(CellWrite::default());
        assert!(cells.load(with_writes, true).unwrap_err().contains("carries cell writes"));
    }

    #[test]
    fn writes_come_once_per_changed_key_in_the_order_to_apply_them_and_the_cells_are_clean_after() {
        let (cells, value, map) = declared(0);
        for key in [b"a", b"b", b"c"] {
            cells.load(load_of(key, vec![content_entries(1, &[(b"old", b"0"), (b"kept", b"0")])]), true).unwrap();
        }
        cells.enter(b"b", 0).unwrap();
        value.set(b"1").unwrap();
        map.put(b"x", b"1").unwrap();
        map.remove(b"old").unwrap();
        map.put(b"y", b"1").unwrap();
        map.put(b"y", b"2").unwrap();
        cells.leave();
        cells.enter(b"a", 0).unwrap();
        map.put(b"gone", b"1").unwrap();
        map.clear().unwrap();
        map.put(b"z", b"1").unwrap();
        map.put(b"w", b"1").unwrap();
        map.remove(b"w").unwrap();
        value.set(b"x").unwrap();
        value.clear().unwrap();
        cells.leave();
        cells.enter(b"c", 0).unwrap();
        let _ = (value.get().unwrap(), map.entries().unwrap());
        cells.leave();

        let writes = cells.take_writes();
        assert_eq!(writes.iter().map(|w| w.key.to_vec()).collect::<Vec<_>>(), [b"a".to_vec(), b"b".to_vec()], "a key only read is not written");
        let (set, clear, put, remove) = (CellOp::Set, CellOp::Clear, CellOp::Put, CellOp::Remove);
        let e = Vec::new;
        assert_eq!(ops(&writes[0]), [(0, clear, e(), e()), (1, clear, e(), e()), (1, put, b"z".to_vec(), b"1".to_vec())]);
        assert_eq!(
            ops(&writes[1]),
            [(0, set, e(), b"1".to_vec()), (1, remove, b"old".to_vec(), e()), (1, put, b"x".to_vec(), b"1".to_vec()), (1, put, b"y".to_vec(), b"2".to_vec())]
        );
        assert!(cells.take_writes().is_empty());
    }

    #[test]
    fn a_ttl_cell_stores_the_write_time_and_hides_what_expired() {
        let (cells, value, map) = declared(100);
        cells.load(load_of(b"k", vec![content_value(0, &timed(1_000, b"loaded")), content_entries(1, &[(b"a", &timed(950, b"old")), (b"b", &timed(1_000, b"new"))])]), true).unwrap();
        cells.enter(b"k", 1_049).unwrap();
        assert_eq!(value.get().unwrap(), Some(b"loaded".to_vec()));
        assert_eq!(map.get(b"a").unwrap(), Some(b"old".to_vec()));
        cells.leave();
        cells.enter(b"k", 1_050).unwrap();
        assert_eq!(map.get(b"a").unwrap(), None, "written at 950 with a TTL of 100: gone at 1050");
        assert_eq!(map.entries().unwrap(), [(b"b".to_vec(), b"new".to_vec())]);
        map.put(b"c", b"fresh").unwrap();
        cells.leave();
        cells.enter(b"k", 1_100).unwrap();
        assert_eq!((value.get().unwrap(), map.get(b"c").unwrap()), (None, Some(b"fresh".to_vec())));
        cells.leave();
        let writes = cells.take_writes();
        assert_eq!(ops(&writes[0]), [(1, CellOp::Put, b"c".to_vec(), timed(1_050, b"fresh"))]);
    }

    /// The resident_bytes of each KeyCells taken, by key.
    fn resident_bytes(writes: &[KeyCells]) -> Vec<(Vec<u8>, u64)> {
        writes.iter().map(|w| (w.key.to_vec(), w.resident_bytes)).collect()
    }

    #[test]
    fn writes_carry_the_bytes_the_keys_value_and_map_cells_take_after_them() {
        let (cells, value, map) = declared(0);
        cells.load(load_of(b"k", vec![content_value(0, b"one"), content_entries(1, &[(b"a", b"1"), (b"bb", b"22")])]), true).unwrap();
        assert_eq!(cells.counted_bytes(b"k"), Some(3 + 2 + 4), "as loaded");
        cells.load(load_of(b"k", vec![content_entries(1, &[(b"a", b"111")])]), false).unwrap();
        assert_eq!(cells.counted_bytes(b"k"), Some(3 + 4 + 4), "a further LOAD replacing an entry");
        cells.load(load_of(b"other", Vec::new()), true).unwrap();
        cells.enter(b"k", 0).unwrap();
        value.set(b"four").unwrap();
        map.put(b"a", b"xyz").unwrap();
        map.put(b"c", b"").unwrap();
        map.remove(b"bb").unwrap();
        map.remove(b"never").unwrap();
        cells.leave();
        cells.enter(b"other", 0).unwrap();
        map.put(b"", b"").unwrap();
        cells.leave();
        let expected = 4 + (1 + 3) + 1;
        assert_eq!(resident_bytes(&cells.take_writes()), [(b"k".to_vec(), expected), (b"other".to_vec(), 0)]);
        assert_eq!(cells.counted_bytes(b"k"), Some(expected as usize));

        cells.enter(b"k", 0).unwrap();
        map.put(b"d", b"dd").unwrap();
        cells.leave();
        assert_eq!(resident_bytes(&cells.take_writes()), [(b"k".to_vec(), expected + 3)], "unchanged cells count too");
        cells.enter(b"k", 0).unwrap();
        value.clear().unwrap();
        map.clear().unwrap();
        cells.leave();
        assert_eq!(resident_bytes(&cells.take_writes()), [(b"k".to_vec(), 0)]);
        assert_eq!(cells.counted_bytes(b"k"), Some(0));
    }

    #[test]
    fn a_ttl_cells_resident_bytes_count_each_values_write_time() {
        let (cells, value, map) = declared(100);
        cells.load(load_of(b"k", vec![content_value(0, &timed(1_000, b"x")), content_entries(1, &[(b"a", &timed(1_000, b"yy"))])]), true).unwrap();
        assert_eq!(cells.counted_bytes(b"k"), Some(9 + 11));
        cells.enter(b"k", 1_050).unwrap();
        map.put(b"b", b"z").unwrap();
        value.set(b"ab").unwrap();
        cells.leave();
        assert_eq!(resident_bytes(&cells.take_writes()), [(b"k".to_vec(), 10 + 11 + 10)]);
        cells.enter(b"k", 5_000).unwrap();
        map.put(b"c", b"").unwrap();
        cells.leave();
        // The values that expired are still held (the step no longer sees them), so they still count.
        assert_eq!(resident_bytes(&cells.take_writes()), [(b"k".to_vec(), 10 + 11 + 10 + 9)]);
        cells.enter(b"k", 5_000).unwrap();
        map.remove(b"a").unwrap();
        cells.leave();
        assert_eq!(resident_bytes(&cells.take_writes()), [(b"k".to_vec(), 10 + 10 + 9)]);
    }

    #[test]
    fn an_evicted_key_is_no_longer_resident_until_loaded_again_and_others_are_kept() {
        let (cells, value, map) = declared(0);
        for key in [b"a", b"b"] {
            cells.load(load_of(key, vec![content_value(0, b"old"), content_entries(1, &[(b"e", b"1")])]), true).unwrap();
        }
        cells.evict(&[b"a".to_vec(), b"never".to_vec()]);
        assert!(!cells.is_resident(b"a") && cells.is_resident(b"b"), "a key not resident is ignored, the rest kept");
        assert!(cells.enter(b"a", 0).unwrap_err().contains("the record's key 'a' is not resident"));
        cells.enter(b"b", 0).unwrap();
        assert_eq!(value.get().unwrap(), Some(b"old".to_vec()));
        cells.leave();

        cells.load(load_of(b"a", vec![content_entries(1, &[(b"f", b"2")])]), true).unwrap();
        assert_eq!(cells.counted_bytes(b"a"), Some(2));
        cells.enter(b"a", 0).unwrap();
        assert_eq!((value.get().unwrap(), map.entries().unwrap()), (None, vec![(b"f".to_vec(), b"2".to_vec())]), "exactly what the new LOAD carried");
        map.put(b"g", b"3").unwrap();
        cells.leave();
        cells.evict(&[b"a".to_vec()]);
        assert!(cells.take_writes().is_empty(), "an evicted key's changes go with it");
    }

    #[test]
    fn evicting_all_but_a_few_keys_shrinks_the_table_of_resident_keys() {
        let (cells, _, _) = declared(0);
        let keys: Vec<Key> = (0..4096).map(|i: u32| i.to_le_bytes().to_vec()).collect();
        for key in &keys {
            cells.load(load_of(key, vec![content_value(0, b"v")]), true).unwrap();
        }
        let loaded = cells.lock().resident.capacity();
        cells.evict(&keys[..4000]);
        let kept = cells.lock().resident.capacity();
        assert!(kept >= 96 && kept <= loaded / 16, "{kept} slots kept of {loaded}");
        assert!(keys[4000..].iter().all(|key| cells.is_resident(key)));
    }

    #[test]
    fn large_writes_are_split_over_pieces_that_fit_in_order() {
        let writes: Vec<CellWrite> = (0..10u8).map(|i| CellWrite { cell: 1, op: CellOp::Put as i32, value: vec![i; 100].into(), entry_key: vec![i].into() }).collect();
        let whole = KeyCells { key: b"key".to_vec().into(), cells: Vec::new(), writes: writes.clone(), resident_bytes: 12_345 };
        let pieces = split(whole.clone(), 350, 350).unwrap();
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|p| p.encoded_len() <= 350 && p.key == whole.key), "{:?}", pieces.iter().map(|p| p.encoded_len()).collect::<Vec<_>>());
        assert!(pieces.iter().all(|p| p.resident_bytes == 12_345), "each piece carries the key's resident_bytes");
        assert_eq!(pieces.into_iter().flat_map(|p| p.writes).collect::<Vec<_>>(), writes);
        assert_eq!(split(whole.clone(), 100, 200).unwrap().len(), 10, "one write beyond the target goes alone");
        let one = KeyCells { writes: writes[..1].to_vec(), ..whole.clone() }.encoded_len();
        let error = split(whole, 100, 100).unwrap_err();
        assert_eq!(error, format!("a write of key 'key' (cell 1) takes {one} bytes, more than a frame holds (100 bytes)"));
    }

    #[test]
    fn keys_are_named_as_text_or_hex() {
        assert_eq!(describe_key(b"user-1"), "'user-1'");
        assert_eq!(describe_key(&[0, 255]), "0x00ff (2 bytes)");
        assert!(describe_key(&[b'a'; 100]).ends_with("… (100 bytes)"));
    }
}
