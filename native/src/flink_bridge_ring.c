/* The shared-memory ring file: see flink_bridge_ring.h for the layout and the waiting protocol. */
#include "flink_bridge_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *const FRAME_TYPE_NAMES[FB_FRAME_TYPE_COUNT] = {
    "PADDING", "RECORD", "WATERMARK", "BARRIER", "OUTPUT", "END_OF_OUTPUTS", "ERROR", "CLOCK", "INPUT_FAILED"};

const char *fb_frame_type_name(unsigned type) {
    return type < FB_FRAME_TYPE_COUNT ? FRAME_TYPE_NAMES[type] : "unknown";
}

static uint64_t align_frame(uint64_t length) {
    return (length + FB_FRAME_ALIGNMENT - 1) & ~(uint64_t)(FB_FRAME_ALIGNMENT - 1);
}

static int64_t clock_ms(clockid_t clock) {
    struct timespec now;
    clock_gettime(clock, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

__attribute__((format(printf, 2, 3))) static void fail(fb_ring_error *error, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error->message, sizeof error->message, format, arguments);
    va_end(arguments);
}

/* ------------------------------------------------------------------------------------ waiting */

static void futex_wait(_Atomic uint32_t *word, uint32_t ticket, int64_t timeout_ns) {
    struct timespec timeout = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    /* EAGAIN (the word moved on), EINTR and ETIMEDOUT all mean "go and look again" to the callers. */
    syscall(SYS_futex, (void *)word, FUTEX_WAIT, ticket, &timeout, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word) {
    syscall(SYS_futex, (void *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

typedef bool (*readiness)(const void *side);

/* Spins, then counts itself in `flag` and sleeps on `futex_word` unless `ready` turned true meanwhile. */
static void await(readiness ready, const void *side, _Atomic uint32_t *futex_word, _Atomic uint32_t *flag,
                  int64_t timeout_ns) {
    for (int i = 0; i < FB_RING_SPINS; i++) {
        if (ready(side)) {
            return;
        }
        cpu_relax();
    }
    /* The ticket is read before the flag is set: a wake-up after this point changes the word, so the
       futex wait returns at once instead of sleeping through it. */
    uint32_t ticket = atomic_load_explicit(futex_word, memory_order_seq_cst);
    atomic_fetch_add_explicit(flag, 1, memory_order_seq_cst);
    if (!ready(side)) {
        futex_wait(futex_word, ticket, timeout_ns);
    }
    atomic_fetch_sub_explicit(flag, 1, memory_order_seq_cst);
}

/* The peer's side, right after its seq_cst position store: wakes the sleepers if the count says any sleep. */
static void wake_if_waiting(_Atomic uint32_t *futex_word, _Atomic uint32_t *flag) {
    if (atomic_load_explicit(flag, memory_order_seq_cst) != 0) {
        atomic_fetch_add_explicit(futex_word, 1, memory_order_seq_cst);
        futex_wake_all(futex_word);
    }
}

/* ------------------------------------------------------------------------------- file header */

static fb_ring_status check_capacity(const char *ring, uint32_t capacity, fb_ring_error *error) {
    if (capacity < FB_RING_MIN_CAPACITY || (capacity & (capacity - 1)) != 0) {
        fail(error, "the %s ring capacity %" PRIu32 " must be a power of two of at least %d", ring, capacity,
             FB_RING_MIN_CAPACITY);
        return FB_RING_BAD_FILE;
    }
    return FB_RING_OK;
}

/* The token as it sits in the header: 1 to 32 ASCII characters, zero padded. */
static fb_ring_status token_bytes(const char *token, unsigned char bytes[FB_RING_TOKEN_LENGTH], fb_ring_error *error) {
    size_t length = strlen(token);
    bool ascii = true;
    for (size_t i = 0; i < length; i++) {
        ascii = ascii && (unsigned char)token[i] < 0x80;
    }
    if (length == 0 || length > FB_RING_TOKEN_LENGTH || !ascii) {
        fail(error, "a session token must be 1 to %d ASCII characters", FB_RING_TOKEN_LENGTH);
        return FB_RING_BAD_FILE;
    }
    memset(bytes, 0, FB_RING_TOKEN_LENGTH);
    memcpy(bytes, token, length);
    return FB_RING_OK;
}

static fb_ring_status copy_path(fb_ring_file *ring, const char *path, fb_ring_error *error) {
    if (strlen(path) >= sizeof ring->path) {
        fail(error, "the ring path is longer than %zu bytes", sizeof ring->path - 1);
        return FB_RING_BAD_FILE;
    }
    strcpy(ring->path, path);
    return FB_RING_OK;
}

static uint64_t file_size(uint32_t to_worker_capacity, uint32_t from_worker_capacity) {
    return (uint64_t)FB_RING_HEADER_SIZE + to_worker_capacity + from_worker_capacity;
}

static size_t guard_size(void) {
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* Maps the file with an inaccessible guard page after it: a write past the last ring's end faults at once
   instead of landing in whatever memory follows the mapping. */
static void *map_file(int fd, size_t size) {
    void *reserved = mmap(NULL, size + guard_size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (reserved == MAP_FAILED) {
        return MAP_FAILED;
    }
    void *map = mmap(reserved, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
    if (map == MAP_FAILED) {
        int saved_errno = errno;
        munmap(reserved, size + guard_size());
        errno = saved_errno;
    }
    return map;
}

static void unmap_file(void *map, size_t size) {
    munmap(map, size + guard_size());
}

static void adopt_mapping(fb_ring_file *ring, void *map, size_t size, uint32_t to_worker_capacity,
                          uint32_t from_worker_capacity, bool bridge_side) {
    ring->header = map;
    ring->base = map;
    ring->size = size;
    ring->to_worker_capacity = to_worker_capacity;
    ring->from_worker_capacity = from_worker_capacity;
    ring->bridge_side = bridge_side;
    ring->next_liveness_ms = 0;
    ring->liveness_timeout_ms = FB_RING_DEFAULT_LIVENESS_TIMEOUT_MS;
}

/* The parent directory of `path` exists (created 0700 if missing), is a directory, is 0700 and is ours. */
static fb_ring_status ensure_private_directory(const char *path, fb_ring_error *error) {
    char directory[FB_RING_PATH_SIZE];
    const char *slash = strrchr(path, '/');
    size_t length = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
    if (length == 0) {
        strcpy(directory, ".");
    } else {
        memcpy(directory, path, length);
        directory[length] = '\0';
    }
    if (mkdir(directory, 0700) != 0 && errno != EEXIST) {
        fail(error, "cannot create the ring directory %s: %s", directory, strerror(errno));
        return FB_RING_SYSTEM_ERROR;
    }
    struct stat status;
    if (lstat(directory, &status) != 0) {
        fail(error, "cannot read the ring directory %s: %s", directory, strerror(errno));
        return FB_RING_SYSTEM_ERROR;
    }
    if (!S_ISDIR(status.st_mode)) {
        fail(error, "ring directory %s is not a directory", directory);
        return FB_RING_BAD_FILE;
    }
    if ((status.st_mode & 07777) != 0700) {
        fail(error, "ring directory %s has mode %04o; it must be 0700 so no other user can open a ring", directory,
             (unsigned)(status.st_mode & 07777));
        return FB_RING_BAD_FILE;
    }
    if (status.st_uid != geteuid()) {
        fail(error, "ring directory %s belongs to uid %u, not to this user (uid %u)", directory,
             (unsigned)status.st_uid, (unsigned)geteuid());
        return FB_RING_BAD_FILE;
    }
    return FB_RING_OK;
}

fb_ring_status fb_ring_create(fb_ring_file *ring, const char *path, uint32_t to_worker_capacity,
                              uint32_t from_worker_capacity, const char *token, fb_ring_error *error) {
    unsigned char token_field[FB_RING_TOKEN_LENGTH];
    fb_ring_status status = check_capacity("to-worker", to_worker_capacity, error);
    if (status == FB_RING_OK) {
        status = check_capacity("from-worker", from_worker_capacity, error);
    }
    if (status == FB_RING_OK) {
        status = token_bytes(token, token_field, error);
    }
    if (status == FB_RING_OK) {
        status = copy_path(ring, path, error);
    }
    if (status == FB_RING_OK) {
        status = ensure_private_directory(path, error);
    }
    if (status != FB_RING_OK) {
        return status;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fail(error, "cannot create %s: %s", path, strerror(errno));
        return FB_RING_SYSTEM_ERROR;
    }
    size_t size = file_size(to_worker_capacity, from_worker_capacity);
    void *map = MAP_FAILED;
    /* Allocated, not just sized: on a full tmpfs a sparse file would fault (SIGBUS) at its first write; this
     * fails here with ENOSPC instead. */
    int allocated = posix_fallocate(fd, 0, (off_t)size);
    if (allocated == 0) {
        map = map_file(fd, size);
    } else {
        errno = allocated;
    }
    int saved_errno = errno;
    close(fd);
    if (map == MAP_FAILED) {
        unlink(path);
        fail(error, "cannot size and map %s: %s", path, strerror(saved_errno));
        return FB_RING_SYSTEM_ERROR;
    }
    /* The first write to a page is slow: pay it now, not per record. */
    for (size_t page = 0; page < size; page += FB_RING_HEADER_SIZE) {
        ((volatile unsigned char *)map)[page] = 0;
    }
    fb_ring_header *header = map;
    header->version = FB_RING_VERSION;
    header->header_size = FB_RING_HEADER_SIZE;
    header->to_worker_capacity = to_worker_capacity;
    header->from_worker_capacity = from_worker_capacity;
    atomic_store_explicit(&header->bridge_pid, (int32_t)getpid(), memory_order_relaxed);
    memcpy(header->token, token_field, sizeof token_field);
    atomic_store_explicit(&header->bridge_heartbeat, clock_ms(CLOCK_REALTIME), memory_order_relaxed);
    /* The magic goes last: a reader that sees it (acquire) sees a complete header. */
    atomic_store_explicit(&header->magic, FB_RING_MAGIC, memory_order_release);
    adopt_mapping(ring, map, size, to_worker_capacity, from_worker_capacity, true);
    return FB_RING_OK;
}

__attribute__((format(printf, 3, 4))) static fb_ring_status refuse(fb_ring_error *error, const char *path,
                                                                   const char *format, ...) {
    char what[256];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(what, sizeof what, format, arguments);
    va_end(arguments);
    fail(error, "%s: not a ring file this side understands: %s", path, what);
    return FB_RING_BAD_FILE;
}

/* Checks the header; the capacities are read once, and what was checked is what the caller gets. */
static fb_ring_status check_header(const fb_ring_header *header, uint64_t size, const char *path,
                                   const unsigned char expected_token[FB_RING_TOKEN_LENGTH],
                                   uint32_t *to_worker_capacity, uint32_t *from_worker_capacity,
                                   fb_ring_error *error) {
    uint64_t magic = atomic_load_explicit(&header->magic, memory_order_acquire);
    if (magic != FB_RING_MAGIC) {
        return refuse(error, path, "magic is %" PRIx64 ", expected %" PRIx64, magic, FB_RING_MAGIC);
    }
    if (header->version != FB_RING_VERSION) {
        return refuse(error, path, "version is %" PRIu32 ", expected %d", header->version, FB_RING_VERSION);
    }
    if (header->header_size != FB_RING_HEADER_SIZE) {
        return refuse(error, path, "header size is %" PRIu32 ", expected %d", header->header_size,
                      FB_RING_HEADER_SIZE);
    }
    *to_worker_capacity = header->to_worker_capacity;
    *from_worker_capacity = header->from_worker_capacity;
    fb_ring_status status = check_capacity("to-worker", *to_worker_capacity, error);
    if (status == FB_RING_OK) {
        status = check_capacity("from-worker", *from_worker_capacity, error);
    }
    if (status != FB_RING_OK) {
        return status;
    }
    uint64_t expected_size = file_size(*to_worker_capacity, *from_worker_capacity);
    if (size != expected_size) {
        return refuse(error, path, "file size is %" PRIu64 ", expected %" PRIu64, size, expected_size);
    }
    unsigned char difference = 0; /* constant time: no early exit that would time the matching prefix */
    for (int i = 0; i < FB_RING_TOKEN_LENGTH; i++) {
        difference |= (unsigned char)(header->token[i] ^ expected_token[i]);
    }
    if (difference != 0) {
        fail(error, "%s: the session token does not match; refusing the ring", path);
        return FB_RING_BAD_FILE;
    }
    return FB_RING_OK;
}

fb_ring_status fb_ring_attach(fb_ring_file *ring, const char *path, const char *token, fb_ring_error *error) {
    unsigned char expected_token[FB_RING_TOKEN_LENGTH];
    fb_ring_status status = token_bytes(token, expected_token, error);
    if (status == FB_RING_OK) {
        status = copy_path(ring, path, error);
    }
    if (status != FB_RING_OK) {
        return status;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fail(error, "cannot open %s: %s", path, strerror(errno));
        return FB_RING_SYSTEM_ERROR;
    }
    struct stat file;
    if (fstat(fd, &file) != 0) {
        fail(error, "cannot read the size of %s: %s", path, strerror(errno));
        close(fd);
        return FB_RING_SYSTEM_ERROR;
    }
    if (file.st_size < FB_RING_HEADER_SIZE) {
        fail(error, "%s: %lld bytes is too small for a ring file", path, (long long)file.st_size);
        close(fd);
        return FB_RING_BAD_FILE;
    }
    size_t size = (size_t)file.st_size;
    void *map = map_file(fd, size);
    int saved_errno = errno;
    close(fd);
    if (map == MAP_FAILED) {
        fail(error, "cannot map %s: %s", path, strerror(saved_errno));
        return FB_RING_SYSTEM_ERROR;
    }
    uint32_t to_worker_capacity = 0;
    uint32_t from_worker_capacity = 0;
    status = check_header(map, size, path, expected_token, &to_worker_capacity, &from_worker_capacity, error);
    if (status != FB_RING_OK) {
        unmap_file(map, size);
        return status;
    }
    adopt_mapping(ring, map, size, to_worker_capacity, from_worker_capacity, false);
    atomic_store_explicit(&ring->header->worker_pid, (int32_t)getpid(), memory_order_release);
    fb_ring_heartbeat(ring);
    return FB_RING_OK;
}

/* ------------------------------------------------------------------------------------- rings */

static fb_ring_control *control_of(fb_ring_file *ring, fb_ring_direction direction) {
    return direction == FB_RING_TO_WORKER ? &ring->header->to_worker : &ring->header->from_worker;
}

static unsigned char *data_of(fb_ring_file *ring, fb_ring_direction direction) {
    return ring->base + FB_RING_HEADER_SIZE + (direction == FB_RING_TO_WORKER ? 0 : ring->to_worker_capacity);
}

static uint32_t capacity_of(const fb_ring_file *ring, fb_ring_direction direction) {
    return direction == FB_RING_TO_WORKER ? ring->to_worker_capacity : ring->from_worker_capacity;
}

static const char *direction_name(fb_ring_direction direction) {
    return direction == FB_RING_TO_WORKER ? "to-worker" : "from-worker";
}

void fb_ring_producer_init(fb_ring_producer *producer, fb_ring_file *ring, fb_ring_direction direction) {
    producer->control = control_of(ring, direction);
    producer->data = data_of(ring, direction);
    producer->capacity = capacity_of(ring, direction);
    producer->max_frame = fb_ring_max_frame_length(producer->capacity);
    producer->tail = atomic_load_explicit(&producer->control->producer_position, memory_order_acquire);
    producer->published = producer->tail;
    producer->cached_head = atomic_load_explicit(&producer->control->consumer_position, memory_order_acquire);
    producer->path = ring->path;
    producer->direction = direction_name(direction);
}

void fb_ring_consumer_init(fb_ring_consumer *consumer, fb_ring_file *ring, fb_ring_direction direction) {
    consumer->control = control_of(ring, direction);
    consumer->data = data_of(ring, direction);
    consumer->capacity = capacity_of(ring, direction);
    consumer->max_frame = fb_ring_max_frame_length(consumer->capacity);
    consumer->head = atomic_load_explicit(&consumer->control->consumer_position, memory_order_acquire);
    consumer->cached_tail = consumer->head;
    consumer->handling = consumer->head;
    consumer->in_handler = false;
    consumer->path = ring->path;
    consumer->direction = direction_name(direction);
}

/*
 * Checks a pair of positions before either indexes the ring: one of them was just read from the control block,
 * where the peer (or whoever wrote the file) may have put anything. Both must be on a frame boundary, and the
 * producer ahead of the consumer by 0 to `capacity` bytes.
 */
static fb_ring_status check_positions(const char *path, const char *direction, uint32_t capacity,
                                      uint64_t producer_position, uint64_t consumer_position, fb_ring_error *error) {
    char what[160];
    if (consumer_position % FB_FRAME_ALIGNMENT != 0) {
        snprintf(what, sizeof what, "consumer position %" PRIu64 " is not 8-byte aligned", consumer_position);
    } else if (producer_position % FB_FRAME_ALIGNMENT != 0) {
        snprintf(what, sizeof what, "producer position %" PRIu64 " is not 8-byte aligned", producer_position);
    } else if (producer_position < consumer_position) {
        snprintf(what, sizeof what, "producer position %" PRIu64 " is behind consumer position %" PRIu64,
                 producer_position, consumer_position);
    } else if (producer_position - consumer_position > capacity) {
        snprintf(what, sizeof what, "producer position %" PRIu64 " is more than the capacity ahead of the consumer",
                 producer_position);
    } else {
        return FB_RING_OK;
    }
    fail(error, "%s (%s ring): corrupt positions: %s (producer at %" PRIu64 ", consumer at %" PRIu64
                ", capacity %" PRIu32 ")",
         path, direction, what, producer_position, consumer_position, capacity);
    return FB_RING_CORRUPT;
}

/* Writes the first 8 bytes of a frame: all a PADDING frame has, which is why the sequence is separate. */
static fb_frame_header *start_frame(unsigned char *at, uint64_t length, fb_frame_type type) {
    fb_frame_header *frame = (fb_frame_header *)at;
    frame->length = (int32_t)length;
    frame->type = (uint16_t)type;
    frame->flags = 0;
    return frame;
}

fb_ring_status fb_ring_producer_claim(fb_ring_producer *producer, fb_frame_type type, uint16_t flags,
                                      int64_t sequence, uint32_t body_length, unsigned char **body,
                                      fb_ring_error *error) {
    uint64_t length = (uint64_t)FB_FRAME_HEADER_SIZE + body_length;
    if (length > producer->max_frame) {
        fail(error,
             "%s (%s ring): a %s frame of %" PRIu64 " bytes does not fit: frames are at most %" PRIu32
             " bytes, half the ring's capacity of %" PRIu32 "; give the session larger rings",
             producer->path, producer->direction, fb_frame_type_name(type), length, producer->max_frame,
             producer->capacity);
        return FB_RING_TOO_LARGE;
    }
    uint64_t aligned = align_frame(length);
    uint32_t index = (uint32_t)(producer->tail & (producer->capacity - 1));
    uint32_t to_end = producer->capacity - index;
    uint32_t padding = aligned > to_end ? to_end : 0;
    uint64_t needed = producer->tail + padding + aligned;
    uint64_t head = producer->cached_head;
    if (needed - head > producer->capacity) {
        head = atomic_load_explicit(&producer->control->consumer_position, memory_order_acquire);
        producer->cached_head = head;
    }
    /* Checked on every claim, before the first write: the consumer position may come from init or a wait as well,
       and the tail started at the shared producer position (it moves by aligned frames, so checking what was
       published checks its alignment too). */
    fb_ring_status status = check_positions(producer->path, producer->direction, producer->capacity,
                                            producer->published, head, error);
    if (status != FB_RING_OK) {
        return status;
    }
    if (needed - head > producer->capacity) {
        return FB_RING_NO_ROOM;
    }
    if (padding > 0) {
        /* The gap may be only 8 bytes: the PADDING frame gets no sequence, so nothing lands past the end. */
        start_frame(producer->data + index, padding, FB_FRAME_PADDING);
        producer->tail += padding;
        index = 0;
    }
    fb_frame_header *frame = start_frame(producer->data + index, length, type);
    frame->flags = flags;
    frame->sequence = sequence;
    producer->tail += aligned;
    *body = producer->data + index + FB_FRAME_HEADER_SIZE;
    return FB_RING_OK;
}

void fb_ring_producer_publish(fb_ring_producer *producer) {
    if (producer->tail == producer->published) {
        return;
    }
    /* seq_cst, not just release: the store must be ordered before the load of the consumer's waiting flag. */
    atomic_store_explicit(&producer->control->producer_position, producer->tail, memory_order_seq_cst);
    producer->published = producer->tail;
    wake_if_waiting(&producer->control->data_futex, &producer->control->consumer_waiting);
}

static bool space_released(const void *side) {
    const fb_ring_producer *producer = side;
    return atomic_load_explicit(&producer->control->consumer_position, memory_order_seq_cst)
           != producer->cached_head;
}

void fb_ring_producer_await_space(fb_ring_producer *producer, int64_t timeout_ns) {
    fb_ring_producer_publish(producer);
    await(space_released, producer, &producer->control->space_futex, &producer->control->producer_waiting,
          timeout_ns);
    /* The next wait waits for progress beyond what was seen now, instead of returning at once. */
    producer->cached_head = atomic_load_explicit(&producer->control->consumer_position, memory_order_acquire);
}

bool fb_ring_producer_drained(const fb_ring_producer *producer) {
    return atomic_load_explicit(&producer->control->consumer_position, memory_order_acquire) == producer->published;
}

__attribute__((format(printf, 4, 5))) static fb_ring_status corrupt(const fb_ring_consumer *consumer,
                                                                    fb_ring_error *error, uint32_t index,
                                                                    const char *format, ...) {
    char what[128];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(what, sizeof what, format, arguments);
    va_end(arguments);
    fail(error,
         "%s (%s ring): corrupt frame at position %" PRIu64 " (ring offset %" PRIu32 "): %s (frames are %d to %" PRIu32
         " bytes, 8-byte aligned)",
         consumer->path, consumer->direction, consumer->head, index, what, FB_FRAME_HEADER_SIZE, consumer->max_frame);
    return FB_RING_CORRUPT;
}

/* Frees the room before `position`, waking a producer that sleeps. */
static void release(fb_ring_consumer *consumer, uint64_t position) {
    /* seq_cst, not just release: the store must be ordered before the load of the producer's waiting count. */
    atomic_store_explicit(&consumer->control->consumer_position, position, memory_order_seq_cst);
    wake_if_waiting(&consumer->control->space_futex, &consumer->control->producer_waiting);
}

int fb_ring_consumer_poll(fb_ring_consumer *consumer, fb_ring_frame_handler handler, void *context, int limit,
                          fb_ring_error *error) {
    if (consumer->head == consumer->cached_tail) {
        /* The head is checked with the tail: it started at the shared consumer position, and only moves by
           checked frames. A tail is kept only once it passed. */
        uint64_t tail = atomic_load_explicit(&consumer->control->producer_position, memory_order_acquire);
        fb_ring_status status = check_positions(consumer->path, consumer->direction, consumer->capacity, tail,
                                                consumer->head, error);
        if (status != FB_RING_OK) {
            return status;
        }
        consumer->cached_tail = tail;
    }
    uint64_t start = consumer->head;
    uint32_t mask = consumer->capacity - 1;
    int frames = 0;
    fb_ring_status status = FB_RING_OK;
    while (consumer->head < consumer->cached_tail && frames < limit) {
        uint32_t index = (uint32_t)(consumer->head & mask);
        /* Each field is read once, and volatile keeps the compiler from reading one again: the producer may
           rewrite the frame, and what is checked must be what is used. */
        const volatile fb_frame_header *frame = (const volatile fb_frame_header *)(consumer->data + index);
        int32_t length = frame->length;
        unsigned type = frame->type;
        uint16_t flags = frame->flags;
        if (type >= FB_FRAME_TYPE_COUNT) {
            status = corrupt(consumer, error, index, "unknown frame type %u", type);
            break;
        }
        int32_t minimum = type == FB_FRAME_PADDING ? FB_FRAME_ALIGNMENT : FB_FRAME_HEADER_SIZE;
        uint64_t aligned = length >= minimum ? align_frame((uint64_t)length) : 0;
        /* Against the bytes published, not head + aligned against the tail: near the top of the 64-bit range the
           sum would wrap, pass, and send the head back to walk PADDING frames without end. */
        if (length < minimum || aligned > consumer->capacity - index || aligned > consumer->cached_tail - consumer->head
            || (type != FB_FRAME_PADDING && (uint32_t)length > consumer->max_frame)) {
            status = corrupt(consumer, error, index, "impossible length %" PRId32 " for a %s frame", length,
                             fb_frame_type_name(type));
            break;
        }
        uint64_t frame_start = consumer->head;
        consumer->head += aligned;
        if (type != FB_FRAME_PADDING) {
            frames++;
            consumer->handling = frame_start;
            consumer->in_handler = true;
            int stopped = handler(context, (fb_frame_type)type, flags, frame->sequence,
                                  consumer->data + index + FB_FRAME_HEADER_SIZE,
                                  (uint32_t)length - FB_FRAME_HEADER_SIZE);
            consumer->in_handler = false;
            if (stopped != 0) {
                status = FB_RING_STOPPED;
                break;
            }
        }
    }
    if (consumer->head != start) {
        release(consumer, consumer->head);
    }
    return status == FB_RING_OK ? frames : status;
}

void fb_ring_consumer_release_handled(fb_ring_consumer *consumer) {
    release(consumer, consumer->in_handler ? consumer->handling : consumer->head);
}

static bool frames_published(const void *side) {
    const fb_ring_consumer *consumer = side;
    return atomic_load_explicit(&consumer->control->producer_position, memory_order_seq_cst) != consumer->head;
}

bool fb_ring_consumer_has_frames(const fb_ring_consumer *consumer) {
    return frames_published(consumer);
}

void fb_ring_consumer_await_frames(fb_ring_consumer *consumer, int64_t timeout_ns) {
    await(frames_published, consumer, &consumer->control->data_futex, &consumer->control->consumer_waiting,
          timeout_ns);
}

/* ---------------------------------------------------------------------------------- liveness */

void fb_ring_heartbeat(fb_ring_file *ring) {
    _Atomic int64_t *beat = ring->bridge_side ? &ring->header->bridge_heartbeat : &ring->header->worker_heartbeat;
    atomic_store_explicit(beat, clock_ms(CLOCK_REALTIME), memory_order_release);
}

bool fb_ring_peer_lost(const fb_ring_file *ring, char *why, size_t why_size) {
    const char *peer = ring->bridge_side ? "worker" : "bridge";
    if (atomic_load_explicit(&ring->header->closed, memory_order_acquire) != 0) {
        snprintf(why, why_size, "the %s closed the ring", peer);
        return true;
    }
    int64_t beat = atomic_load_explicit(ring->bridge_side ? &ring->header->worker_heartbeat
                                                          : &ring->header->bridge_heartbeat, memory_order_acquire);
    int64_t silence = clock_ms(CLOCK_REALTIME) - beat;
    if (silence > ring->liveness_timeout_ms) {
        snprintf(why, why_size, "no heartbeat from the %s for %" PRId64 " ms (the limit is %" PRId64 " ms)", peer,
                 silence, ring->liveness_timeout_ms);
        return true;
    }
    return false;
}

bool fb_ring_keep_alive(fb_ring_file *ring, char *why, size_t why_size) {
    int64_t now = clock_ms(CLOCK_MONOTONIC);
    if (now < ring->next_liveness_ms) {
        return true;
    }
    ring->next_liveness_ms = now + FB_RING_LIVENESS_INTERVAL_MS;
    fb_ring_heartbeat(ring);
    return !fb_ring_peer_lost(ring, why, why_size);
}

void fb_ring_close(fb_ring_file *ring) {
    fb_ring_header *header = ring->header;
    atomic_store_explicit(&header->closed, FB_RING_CLOSED_LEFT, memory_order_seq_cst);
    /* A peer asleep on either ring wakes now and sees the flag, instead of at its timeout. */
    wake_if_waiting(&header->to_worker.data_futex, &header->to_worker.consumer_waiting);
    wake_if_waiting(&header->to_worker.space_futex, &header->to_worker.producer_waiting);
    wake_if_waiting(&header->from_worker.data_futex, &header->from_worker.consumer_waiting);
    wake_if_waiting(&header->from_worker.space_futex, &header->from_worker.producer_waiting);
    unmap_file(ring->base, ring->size);
    if (ring->bridge_side) {
        unlink(ring->path);
    }
    ring->header = NULL;
    ring->base = NULL;
}
