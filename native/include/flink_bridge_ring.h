/*
 * The Flink Bridge shared-memory ring file: the reference implementation in C11.
 *
 * One file per session, created by the bridge and attached by the worker, holds two single-producer
 * single-consumer rings: to-worker (the bridge writes inputs) and from-worker (the worker writes outputs).
 * The layout is the contract; transport-shm's RingLayout.java draws the same table. All words are
 * little-endian; positions are byte counts that only grow (the index in a ring is position & (capacity-1)).
 *
 * offset  size  field
 * ------  ----  ------------------------------------------------ header page (4096 bytes)
 *      0     8  magic "FBRING01"
 *      8     4  version (1)
 *     12     4  header size (4096)
 *     16     4  to-worker ring capacity   (power of two, >= 4096)
 *     20     4  from-worker ring capacity (power of two, >= 4096)
 *     24     4  bridge pid
 *     28     4  worker pid (0 until the worker attaches)
 *     32    32  session token (ASCII, zero padded)
 *     64     8  bridge heartbeat (epoch ms, written by the bridge)
 *    128     8  worker heartbeat (epoch ms, written by the worker)
 *    192     4  closed flag (either side sets 1 when it leaves)
 *    256   256  to-worker ring control     (see below)
 *    512   256  from-worker ring control   (see below)
 *   4096   C1   to-worker ring data
 * 4096+C1  C2   from-worker ring data
 *
 * ring control block (each word on its own 64-byte cache line, so the two sides never share a line):
 *     +0     8  producer position (written by the producer only, release)
 *    +64     8  consumer position (written by the consumer only, release)
 *   +128     4  data futex: bumped by the producer to wake a consumer waiting for frames
 *   +132     4  consumer waiting count: how many of the consumer's threads sleep on the data futex
 *   +192     4  space futex: bumped by the consumer to wake a producer waiting for room
 *   +196     4  producer waiting count: how many of the producer's threads sleep on the space futex
 *
 * frame (8-byte aligned; it never wraps: a PADDING frame fills the rest of the ring instead):
 *      0     4  length of header + body (the frame occupies length rounded up to 8)
 *      4     2  type (fb_frame_type)
 *      6     2  flags: a RECORD's Flink key group (0xFFFF when the stream is not keyed); 0 otherwise
 *      8     8  sequence: the input this frame is, or answers (absent from PADDING, which may be 8 bytes)
 *     16     -  body
 *
 * Waiting: a side that finds nothing to do spins briefly, then reads the futex word (its ticket), adds one to
 * its waiting count, re-checks, sleeps on the futex while the word still holds the ticket, and takes the one
 * back. The peer, after publishing its position, reads that count and, when it is not zero, bumps the futex
 * word and wakes all sleepers. A count rather than a flag, because more than one thread of a side may wait
 * (the Java bridge watches for answers from a second thread). The count updates, the re-check, the position
 * store and the count load are all sequentially consistent, so one side always sees the other: no wake-up
 * is lost.
 *
 * Threads: an fb_ring_producer and an fb_ring_consumer each belong to one thread at a time; nothing on
 * the claim, publish, poll or wait paths allocates.
 */
#ifndef FLINK_BRIDGE_RING_H
#define FLINK_BRIDGE_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------- layout */

#define FB_RING_MAGIC UINT64_C(0x3130474E49524246) /* "FBRING01" read as a little-endian u64 */
#define FB_RING_VERSION 1
#define FB_RING_HEADER_SIZE 4096
#define FB_RING_MIN_CAPACITY 4096
#define FB_RING_TOKEN_LENGTH 32
#define FB_RING_CACHE_LINE 64

enum fb_ring_header_offset {
    FB_RING_MAGIC_OFFSET = 0,
    FB_RING_VERSION_OFFSET = 8,
    FB_RING_HEADER_SIZE_OFFSET = 12,
    FB_RING_TO_WORKER_CAPACITY_OFFSET = 16,
    FB_RING_FROM_WORKER_CAPACITY_OFFSET = 20,
    FB_RING_BRIDGE_PID_OFFSET = 24,
    FB_RING_WORKER_PID_OFFSET = 28,
    FB_RING_TOKEN_OFFSET = 32,
    FB_RING_BRIDGE_HEARTBEAT_OFFSET = 64,
    FB_RING_WORKER_HEARTBEAT_OFFSET = 128,
    FB_RING_CLOSED_OFFSET = 192,
    FB_RING_TO_WORKER_CONTROL_OFFSET = 256,
    FB_RING_FROM_WORKER_CONTROL_OFFSET = 512
};

enum fb_ring_control_offset {
    FB_RING_PRODUCER_POSITION = 0,
    FB_RING_CONSUMER_POSITION = 64,
    FB_RING_DATA_FUTEX = 128,
    FB_RING_CONSUMER_WAITING = 132,
    FB_RING_SPACE_FUTEX = 192,
    FB_RING_PRODUCER_WAITING = 196,
    FB_RING_CONTROL_SIZE = 256
};

enum fb_frame_offset {
    FB_FRAME_LENGTH = 0,
    FB_FRAME_TYPE = 4,
    FB_FRAME_FLAGS = 6,
    FB_FRAME_SEQUENCE = 8,
    FB_FRAME_HEADER_SIZE = 16,
    FB_FRAME_ALIGNMENT = 8
};

/* The frame types, as numbered on the wire. */
typedef enum fb_frame_type {
    FB_FRAME_PADDING = 0,
    FB_FRAME_RECORD = 1,         /* bridge -> worker: an input record (record body) */
    FB_FRAME_WATERMARK = 2,      /* bridge -> worker: event time advanced (body: i64 timestamp) */
    FB_FRAME_BARRIER = 3,        /* bridge -> worker: flush marker (body: i64 checkpoint id) */
    FB_FRAME_OUTPUT = 4,         /* worker -> bridge: one output of input `sequence` (record body) */
    FB_FRAME_END_OF_OUTPUTS = 5, /* worker -> bridge: input `sequence` has no more outputs (empty body) */
    FB_FRAME_ERROR = 6,          /* worker -> bridge: input `sequence` failed (body: UTF-8 message) */
    FB_FRAME_CLOCK = 7,          /* bridge -> worker: processing time advanced (body: i64 ms since the epoch) */
    FB_FRAME_INPUT_FAILED = 8,   /* worker -> bridge: record input `sequence` failed in a dead-letter step */
    FB_FRAME_LOAD = 9,           /* bridge -> worker: part of the record input that follows: its key's cells */
    FB_FRAME_CELL_WRITES = 10,   /* worker -> bridge: part of a BARRIER's answer: one key's changed cells */
    FB_FRAME_TIMER = 11,         /* bridge -> worker: a timer of the key in the body fires */
    FB_FRAME_TIMERS = 12         /* worker -> bridge: part of a RECORD's or TIMER's answer: its timer changes */
} fb_frame_type;

#define FB_FRAME_TYPE_COUNT 9

/* The closed flag's values: a side left; the worker stopped as asked (SIGTERM) after answering every input it read. */
#define FB_RING_CLOSED_LEFT 1
#define FB_RING_CLOSED_STOPPED 2

/* The flags of a RECORD frame whose stream is not keyed; otherwise they carry the record's Flink key group. */
#define FB_RING_NO_KEY_GROUP 0xFFFF

/* A ring's control block. Each side writes only its own lines. */
typedef struct fb_ring_control {
    _Atomic uint64_t producer_position;
    unsigned char producer_line_rest[56];
    _Atomic uint64_t consumer_position;
    unsigned char consumer_line_rest[56];
    _Atomic uint32_t data_futex;
    _Atomic uint32_t consumer_waiting;
    unsigned char data_line_rest[56];
    _Atomic uint32_t space_futex;
    _Atomic uint32_t producer_waiting;
    unsigned char space_line_rest[56];
} fb_ring_control;

/* The used part of the header page (the page itself is FB_RING_HEADER_SIZE bytes). */
typedef struct fb_ring_header {
    _Atomic uint64_t magic; /* written last by the creator (release), so its presence means a full header */
    uint32_t version;
    uint32_t header_size;
    uint32_t to_worker_capacity;
    uint32_t from_worker_capacity;
    _Atomic int32_t bridge_pid;
    _Atomic int32_t worker_pid;
    unsigned char token[FB_RING_TOKEN_LENGTH];
    _Atomic int64_t bridge_heartbeat;
    unsigned char bridge_heartbeat_line_rest[56];
    _Atomic int64_t worker_heartbeat;
    unsigned char worker_heartbeat_line_rest[56];
    _Atomic uint32_t closed;
    unsigned char closed_line_rest[60];
    fb_ring_control to_worker;
    fb_ring_control from_worker;
} fb_ring_header;

/* A frame's header; a PADDING frame may consist of its first 8 bytes only, so never read its sequence. */
typedef struct fb_frame_header {
    int32_t length;
    uint16_t type;
    uint16_t flags;
    int64_t sequence;
} fb_frame_header;

/* The two sides are separate processes: the shared words must be lock-free, plain-sized and little-endian. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the ring layout is little-endian");
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && sizeof(_Atomic int64_t) == 8, "64-bit words are 8 bytes");
_Static_assert(sizeof(_Atomic uint32_t) == 4 && sizeof(_Atomic int32_t) == 4, "32-bit words are 4 bytes");

_Static_assert(offsetof(fb_ring_header, magic) == FB_RING_MAGIC_OFFSET, "magic at 0");
_Static_assert(offsetof(fb_ring_header, version) == FB_RING_VERSION_OFFSET, "version at 8");
_Static_assert(offsetof(fb_ring_header, header_size) == FB_RING_HEADER_SIZE_OFFSET, "header size at 12");
_Static_assert(offsetof(fb_ring_header, to_worker_capacity) == FB_RING_TO_WORKER_CAPACITY_OFFSET,
               "to-worker capacity at 16");
_Static_assert(offsetof(fb_ring_header, from_worker_capacity) == FB_RING_FROM_WORKER_CAPACITY_OFFSET,
               "from-worker capacity at 20");
_Static_assert(offsetof(fb_ring_header, bridge_pid) == FB_RING_BRIDGE_PID_OFFSET, "bridge pid at 24");
_Static_assert(offsetof(fb_ring_header, worker_pid) == FB_RING_WORKER_PID_OFFSET, "worker pid at 28");
_Static_assert(offsetof(fb_ring_header, token) == FB_RING_TOKEN_OFFSET, "token at 32");
_Static_assert(FB_RING_TOKEN_OFFSET + FB_RING_TOKEN_LENGTH == FB_RING_BRIDGE_HEARTBEAT_OFFSET,
               "the token ends where the bridge heartbeat line starts");
_Static_assert(offsetof(fb_ring_header, bridge_heartbeat) == FB_RING_BRIDGE_HEARTBEAT_OFFSET,
               "bridge heartbeat at 64");
_Static_assert(offsetof(fb_ring_header, worker_heartbeat) == FB_RING_WORKER_HEARTBEAT_OFFSET,
               "worker heartbeat at 128");
_Static_assert(offsetof(fb_ring_header, closed) == FB_RING_CLOSED_OFFSET, "closed flag at 192");
_Static_assert(FB_RING_BRIDGE_HEARTBEAT_OFFSET % FB_RING_CACHE_LINE == 0
                       && FB_RING_WORKER_HEARTBEAT_OFFSET % FB_RING_CACHE_LINE == 0
                       && FB_RING_CLOSED_OFFSET % FB_RING_CACHE_LINE == 0,
               "each liveness word starts its own cache line");
_Static_assert(offsetof(fb_ring_header, to_worker) == FB_RING_TO_WORKER_CONTROL_OFFSET, "to-worker control at 256");
_Static_assert(offsetof(fb_ring_header, from_worker) == FB_RING_FROM_WORKER_CONTROL_OFFSET,
               "from-worker control at 512");
_Static_assert(FB_RING_FROM_WORKER_CONTROL_OFFSET - FB_RING_TO_WORKER_CONTROL_OFFSET == FB_RING_CONTROL_SIZE,
               "the control blocks are adjacent");
_Static_assert(sizeof(fb_ring_header) == FB_RING_FROM_WORKER_CONTROL_OFFSET + FB_RING_CONTROL_SIZE,
               "the header struct ends after the from-worker control block");
_Static_assert(sizeof(fb_ring_header) <= FB_RING_HEADER_SIZE, "the header fits its 4096-byte page");
_Static_assert(FB_RING_HEADER_SIZE % FB_RING_CACHE_LINE == 0, "ring data starts on a cache line");

_Static_assert(offsetof(fb_ring_control, producer_position) == FB_RING_PRODUCER_POSITION, "producer position at +0");
_Static_assert(offsetof(fb_ring_control, consumer_position) == FB_RING_CONSUMER_POSITION, "consumer position at +64");
_Static_assert(offsetof(fb_ring_control, data_futex) == FB_RING_DATA_FUTEX, "data futex at +128");
_Static_assert(offsetof(fb_ring_control, consumer_waiting) == FB_RING_CONSUMER_WAITING,
               "consumer waiting count at +132");
_Static_assert(offsetof(fb_ring_control, space_futex) == FB_RING_SPACE_FUTEX, "space futex at +192");
_Static_assert(offsetof(fb_ring_control, producer_waiting) == FB_RING_PRODUCER_WAITING,
               "producer waiting count at +196");
_Static_assert(sizeof(fb_ring_control) == FB_RING_CONTROL_SIZE, "a control block is 256 bytes");
_Static_assert(FB_RING_PRODUCER_POSITION % FB_RING_CACHE_LINE == 0 && FB_RING_CONSUMER_POSITION % FB_RING_CACHE_LINE == 0
                       && FB_RING_DATA_FUTEX % FB_RING_CACHE_LINE == 0 && FB_RING_SPACE_FUTEX % FB_RING_CACHE_LINE == 0,
               "positions and futex words each start their own cache line");
_Static_assert(FB_RING_CONSUMER_WAITING / FB_RING_CACHE_LINE == FB_RING_DATA_FUTEX / FB_RING_CACHE_LINE
                       && FB_RING_PRODUCER_WAITING / FB_RING_CACHE_LINE == FB_RING_SPACE_FUTEX / FB_RING_CACHE_LINE,
               "each waiting count sits on the line of the futex it sleeps on");

_Static_assert(offsetof(fb_frame_header, length) == FB_FRAME_LENGTH, "frame length at 0");
_Static_assert(offsetof(fb_frame_header, type) == FB_FRAME_TYPE, "frame type at 4");
_Static_assert(offsetof(fb_frame_header, flags) == FB_FRAME_FLAGS, "frame flags at 6");
_Static_assert(offsetof(fb_frame_header, sequence) == FB_FRAME_SEQUENCE, "frame sequence at 8");
_Static_assert(sizeof(fb_frame_header) == FB_FRAME_HEADER_SIZE, "a frame header is 16 bytes");
_Static_assert(FB_FRAME_SEQUENCE == FB_FRAME_ALIGNMENT, "a PADDING frame without its sequence is one alignment unit");
_Static_assert(FB_FRAME_HEADER_SIZE % FB_FRAME_ALIGNMENT == 0, "frame bodies start 8-byte aligned");
_Static_assert(FB_RING_MIN_CAPACITY % FB_FRAME_ALIGNMENT == 0, "a ring holds whole alignment units");

/* ------------------------------------------------------------------------------------------ API */

/* Results of the calls below; the negative ones fill an fb_ring_error. */
typedef enum fb_ring_status {
    FB_RING_OK = 0,
    FB_RING_NO_ROOM = 1,     /* claim: the ring is full now; wait for space and claim again */
    FB_RING_TOO_LARGE = -1,  /* claim: the frame is larger than half the ring and can never fit */
    FB_RING_CORRUPT = -2,    /* poll, claim: an impossible frame or position; the ring cannot be trusted */
    FB_RING_STOPPED = -3,    /* poll: the frame handler asked to stop (its frame counts as consumed) */
    FB_RING_BAD_FILE = -4,   /* attach/create: a header, token, capacity or directory this side refuses */
    FB_RING_SYSTEM_ERROR = -5 /* attach/create: a system call failed */
} fb_ring_status;

#define FB_RING_ERROR_SIZE 1024

typedef struct fb_ring_error {
    char message[FB_RING_ERROR_SIZE];
} fb_ring_error;

typedef enum fb_ring_direction {
    FB_RING_TO_WORKER,
    FB_RING_FROM_WORKER
} fb_ring_direction;

#define FB_RING_PATH_SIZE 4096

/*
 * One mapped ring file, from fb_ring_create (bridge side) or fb_ring_attach (worker side). The mapping is
 * followed by an inaccessible guard page, so a write past the last ring's end faults instead of corrupting.
 */
typedef struct fb_ring_file {
    fb_ring_header *header;
    unsigned char *base;
    size_t size;
    uint32_t to_worker_capacity;
    uint32_t from_worker_capacity;
    bool bridge_side;
    int64_t next_liveness_ms;
    /* How long the peer's heartbeat may be silent before it counts as lost: the session's liveness timeout
     * (OpenSession's liveness_timeout_ms); FB_RING_DEFAULT_LIVENESS_TIMEOUT_MS until set. */
    int64_t liveness_timeout_ms;
    char path[FB_RING_PATH_SIZE];
} fb_ring_file;

typedef struct fb_ring_producer {
    fb_ring_control *control;
    unsigned char *data;
    uint32_t capacity;
    uint32_t max_frame;
    uint64_t tail;        /* end of the claimed frames */
    uint64_t published;   /* the tail the consumer can see */
    uint64_t cached_head; /* the consumer position last read */
    const char *path;
    const char *direction;
} fb_ring_producer;

typedef struct fb_ring_consumer {
    fb_ring_control *control;
    unsigned char *data;
    uint32_t capacity;
    uint32_t max_frame;
    uint64_t head;        /* the next frame to read */
    uint64_t cached_tail; /* the producer position last read */
    uint64_t handling;    /* where the frame being handled starts, while a handler runs */
    bool in_handler;
    const char *path;
    const char *direction;
} fb_ring_consumer;

/*
 * Receives one frame in place: the body is valid during the call only. `flags` are a RECORD's Flink key group,
 * FB_RING_NO_KEY_GROUP when its stream is not keyed, and 0 on every other frame. Return 0 to go on, non-zero
 * to make fb_ring_consumer_poll stop and return FB_RING_STOPPED.
 */
typedef int (*fb_ring_frame_handler)(void *context, fb_frame_type type, uint16_t flags, int64_t sequence,
                                     const unsigned char *body, uint32_t body_length);

/* Spins before a wait sleeps on its futex: a few microseconds, since a busy peer answers sooner. */
#define FB_RING_SPINS 2000
/* How often fb_ring_keep_alive beats this side's heartbeat and looks at the peer. */
#define FB_RING_LIVENESS_INTERVAL_MS 100
/* The bridge's default liveness timeout (flink-bridge.liveness-timeout). */
#define FB_RING_DEFAULT_LIVENESS_TIMEOUT_MS 5000

/* The largest frame (header + body) a ring of `capacity` bytes takes: half, so it fits once the ring is empty. */
static inline uint32_t fb_ring_max_frame_length(uint32_t capacity) {
    return capacity / 2;
}

/* The wire name of a frame type ("RECORD", ...), or "unknown" for a number that is none. */
const char *fb_frame_type_name(unsigned type);

/*
 * The bridge side: creates `path` (mode 0600; its directory is created with mode 0700 if missing and must
 * be 0700 and ours) and maps it with a fresh header. The token is 1 to 32 ASCII characters.
 */
fb_ring_status fb_ring_create(fb_ring_file *ring, const char *path, uint32_t to_worker_capacity,
                              uint32_t from_worker_capacity, const char *token, fb_ring_error *error);

/*
 * The worker side: maps an existing ring file, refusing it unless magic, version, header size, capacities,
 * file size and token (compared in constant time) are right; then records the worker pid and heartbeat.
 */
fb_ring_status fb_ring_attach(fb_ring_file *ring, const char *path, const char *token, fb_ring_error *error);

void fb_ring_producer_init(fb_ring_producer *producer, fb_ring_file *ring, fb_ring_direction direction);
void fb_ring_consumer_init(fb_ring_consumer *consumer, fb_ring_file *ring, fb_ring_direction direction);

/*
 * Claims a frame with a body of `body_length` bytes and writes its header, `flags` included (a RECORD's key
 * group or FB_RING_NO_KEY_GROUP; 0 on every other frame). FB_RING_OK sets *body to where
 * the body goes; FB_RING_NO_ROOM means the ring is full now; FB_RING_TOO_LARGE (with a message naming
 * the frame size, the limit and the capacity) means it never will have room. FB_RING_CORRUPT (with a message
 * naming the ring, its direction and the bad position) means the shared positions are impossible: unaligned,
 * or the consumer behind the producer by more than the capacity or ahead of it; nothing was written.
 */
fb_ring_status fb_ring_producer_claim(fb_ring_producer *producer, fb_frame_type type, uint16_t flags,
                                      int64_t sequence, uint32_t body_length, unsigned char **body,
                                      fb_ring_error *error);

/* Makes every claimed frame visible to the consumer, waking it if it sleeps. */
void fb_ring_producer_publish(fb_ring_producer *producer);

/* Publishes, then waits until the consumer releases room (or about `timeout_ns` passed). */
void fb_ring_producer_await_space(fb_ring_producer *producer, int64_t timeout_ns);

/* Whether the consumer has taken every published frame. */
bool fb_ring_producer_drained(const fb_ring_producer *producer);

/*
 * Hands up to `limit` published frames to `handler`, checking each first, and then releases their room
 * with one store. Returns the number of frames handed over (PADDING is not handed over), FB_RING_CORRUPT
 * with a message naming the position, ring offset and problem (or, for impossible shared positions, the bad
 * position, as claim does), or FB_RING_STOPPED. Nothing is read from the ring before its positions passed.
 */
int fb_ring_consumer_poll(fb_ring_consumer *consumer, fb_ring_frame_handler handler, void *context, int limit,
                          fb_ring_error *error);

/*
 * For a handler that must wait (for room to answer in the other ring, say): releases the frames handled
 * before the current one and wakes the producer if it waits, so the peer can drain what this side wrote
 * and go on. Without it, both sides could wait for each other until their timeouts.
 */
void fb_ring_consumer_release_handled(fb_ring_consumer *consumer);

/* Whether a frame is published and not yet polled. */
bool fb_ring_consumer_has_frames(const fb_ring_consumer *consumer);

/* Waits until a frame is published (or about `timeout_ns` passed); spins first, then sleeps. */
void fb_ring_consumer_await_frames(fb_ring_consumer *consumer, int64_t timeout_ns);

/* Marks this side alive now. */
void fb_ring_heartbeat(fb_ring_file *ring);

/*
 * Whether the peer is lost: it closed the ring, or its heartbeat has been silent for more than
 * ring->liveness_timeout_ms; the reason goes to `why`. Process ids are never looked at: the peer may live in
 * another PID namespace (a sidecar container), where its pid names another process or none.
 */
bool fb_ring_peer_lost(const fb_ring_file *ring, char *why, size_t why_size);

/*
 * For loops that wait: every FB_RING_LIVENESS_INTERVAL_MS beats this side's heartbeat and returns false
 * (reason in `why`) when the peer is lost; in between it only reads the clock.
 */
bool fb_ring_keep_alive(fb_ring_file *ring, char *why, size_t why_size);

/*
 * Tells the peer this side left (closed flag) and wakes it if it sleeps on either ring, unmaps, and on the
 * bridge side removes the file.
 */
void fb_ring_close(fb_ring_file *ring);

#endif
