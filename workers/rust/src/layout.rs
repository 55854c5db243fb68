//! The ring file's layout, as docs/protocol.md draws it (and transport-shm's RingLayout.java and the C header
//! name it): byte offsets in the header page and in a ring's control block, and the frame types.
//!
//! ```text
//! header page (4096 B)                       control block (256 B), one 64 B line per word
//!   0 magic "FBRING01"   8 version  12 header size    0 producer position (producer writes, release)
//!  16 to-worker capacity 20 from-worker capacity      64 consumer position (consumer writes, release)
//!  24 bridge pid  28 worker pid  32 token (32 B)     128 data futex  132 consumer waiting
//!  64 bridge heartbeat  128 worker heartbeat          192 space futex 196 producer waiting
//! 192 closed flag  256 to-worker control  512 from-worker control
//! then the to-worker ring's data, then the from-worker ring's
//! frame: u32 length | u16 type | u16 flags | u64 sequence | body, 8-byte aligned, never wrapping
//! ```

pub const MAGIC: u64 = 0x3130_474E_4952_4246; // "FBRING01" read as a little-endian 64-bit word
pub const VERSION: u32 = 1;
pub const HEADER_SIZE: usize = 4096;
pub const MIN_CAPACITY: u32 = 4096;

pub const MAGIC_OFFSET: usize = 0;
pub const VERSION_OFFSET: usize = 8;
pub const HEADER_SIZE_OFFSET: usize = 12;
pub const TO_WORKER_CAPACITY_OFFSET: usize = 16;
pub const FROM_WORKER_CAPACITY_OFFSET: usize = 20;
pub const WORKER_PID_OFFSET: usize = 28;
pub const TOKEN_OFFSET: usize = 32;
pub const TOKEN_LENGTH: usize = 32;
pub const BRIDGE_HEARTBEAT_OFFSET: usize = 64;
pub const WORKER_HEARTBEAT_OFFSET: usize = 128;
pub const CLOSED_OFFSET: usize = 192;
/// The closed flag's values: a side left; the worker stopped as asked (SIGTERM) after answering what it read.
pub const CLOSED_LEFT: u32 = 1;
pub const CLOSED_STOPPED: u32 = 2;
pub const TO_WORKER_CONTROL_OFFSET: usize = 256;
pub const FROM_WORKER_CONTROL_OFFSET: usize = 512;

pub const PRODUCER_POSITION: usize = 0;
pub const CONSUMER_POSITION: usize = 64;
pub const DATA_FUTEX: usize = 128;
pub const CONSUMER_WAITING: usize = 132;
pub const SPACE_FUTEX: usize = 192;
pub const PRODUCER_WAITING: usize = 196;

pub const FRAME_HEADER: usize = 16;
pub const FRAME_ALIGNMENT: usize = 8;
/// The flags of a RECORD frame whose stream is not keyed.
pub const NO_KEY_GROUP: u16 = 0xFFFF;

pub const PADDING: u16 = 0;
pub const RECORD: u16 = 1;
pub const WATERMARK: u16 = 2;
pub const BARRIER: u16 = 3;
pub const OUTPUT: u16 = 4;
pub const END_OF_OUTPUTS: u16 = 5;
pub const ERROR: u16 = 6;
pub const CLOCK: u16 = 7;
pub const INPUT_FAILED: u16 = 8;
/// bridge -> worker, part of the record input that follows (its sequence): the record's key's cells (a KeyCells).
pub const LOAD: u16 = 9;
/// worker -> bridge, part of a BARRIER's answer: one key's changed cells (a KeyCells).
pub const CELL_WRITES: u16 = 10;
/// bridge -> worker: a timer of a key fires (the key as a keyed RECORD carries it, then a TimerFiring).
pub const TIMER: u16 = 11;
/// worker -> bridge, part of a RECORD's or TIMER's answer before its end marker: the timers its steps set or deleted
/// (a TimerChanges).
pub const TIMERS: u16 = 12;
const FRAME_NAMES: [&str; 13] = [
    "PADDING", "RECORD", "WATERMARK", "BARRIER", "OUTPUT", "END_OF_OUTPUTS", "ERROR", "CLOCK", "INPUT_FAILED", "LOAD", "CELL_WRITES", "TIMER", "TIMERS",
];

pub fn frame_name(frame_type: u16) -> String {
    FRAME_NAMES.get(frame_type as usize).map(|n| n.to_string()).unwrap_or_else(|| format!("unknown type {frame_type}"))
}

pub fn is_known_type(frame_type: u16) -> bool {
    (frame_type as usize) < FRAME_NAMES.len()
}

pub const fn align(length: usize) -> usize {
    (length + FRAME_ALIGNMENT - 1) & !(FRAME_ALIGNMENT - 1)
}

/// A frame takes at most half a ring, so it always fits once the ring is empty.
pub const fn max_frame_length(capacity: usize) -> usize {
    capacity / 2
}

pub const fn file_size(to_worker: usize, from_worker: usize) -> usize {
    HEADER_SIZE + to_worker + from_worker
}
