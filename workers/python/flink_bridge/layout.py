"""The ring file's layout, as docs/protocol.md and transport-shm's RingLayout.java draw it: byte offsets and
frame types. All words are little-endian; positions only grow (the index in a ring is position & (capacity-1)).
"""
import struct

MAGIC = 0x3130474E49524246  # "FBRING01" read as a little-endian 64-bit word
VERSION = 1
HEADER_SIZE = 4096
MIN_CAPACITY = 4096

MAGIC_OFFSET = 0
VERSION_OFFSET = 8
HEADER_SIZE_OFFSET = 12
TO_WORKER_CAPACITY_OFFSET = 16
FROM_WORKER_CAPACITY_OFFSET = 20
BRIDGE_PID_OFFSET = 24
WORKER_PID_OFFSET = 28
TOKEN_OFFSET = 32
TOKEN_LENGTH = 32
BRIDGE_HEARTBEAT_OFFSET = 64
WORKER_HEARTBEAT_OFFSET = 128
CLOSED_OFFSET = 192
# The closed flag's values: a side left; the worker stopped as asked (SIGTERM) after answering every input it read.
CLOSED_LEFT = 1
CLOSED_STOPPED = 2
TO_WORKER_CONTROL_OFFSET = 256
FROM_WORKER_CONTROL_OFFSET = 512

# Within a ring's control block, each word on its own cache line.
PRODUCER_POSITION = 0
CONSUMER_POSITION = 64
DATA_FUTEX = 128
CONSUMER_WAITING = 132
SPACE_FUTEX = 192
PRODUCER_WAITING = 196

# A frame: u32 length (header + body), u16 type, u16 flags, u64 sequence, body; 8-byte aligned, never wrapping.
FRAME_HEADER = 16
FRAME_ALIGNMENT = 8
# The flags of a RECORD frame whose stream is not keyed.
NO_KEY_GROUP = 0xFFFF

(PADDING, RECORD, WATERMARK, BARRIER, OUTPUT, END_OF_OUTPUTS, ERROR, CLOCK, INPUT_FAILED, LOAD, CELL_WRITES, TIMER,
 TIMERS) = range(13)
FRAME_NAMES = ("PADDING", "RECORD", "WATERMARK", "BARRIER", "OUTPUT", "END_OF_OUTPUTS", "ERROR", "CLOCK",
               "INPUT_FAILED", "LOAD", "CELL_WRITES", "TIMER", "TIMERS")

FRAME = struct.Struct("<IHHq")
UINT32 = struct.Struct("<I")
INT64 = struct.Struct("<q")


def frame_name(frame_type):
    return FRAME_NAMES[frame_type] if 0 <= frame_type < len(FRAME_NAMES) else f"unknown type {frame_type}"


def align(length):
    return (length + FRAME_ALIGNMENT - 1) & -FRAME_ALIGNMENT


def max_frame_length(capacity):
    """A frame takes at most half a ring, so it always fits once the ring is empty."""
    return capacity // 2


def file_size(to_worker_capacity, from_worker_capacity):
    return HEADER_SIZE + to_worker_capacity + from_worker_capacity
