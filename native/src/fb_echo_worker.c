/*
 * fb_echo_worker RING_PATH TOKEN
 *
 * A worker written against the C ring library, for testing the Java bridge side. It attaches to the ring
 * file and answers the to-worker ring in order: a RECORD gets one OUTPUT with the same sequence and the same
 * record plus the header "echo": "c" and, when the record carries a key group in its frame's flags, the header
 * "key_group": that number (decoded and re-encoded, so the C record codec is used both ways), then
 * END_OF_OUTPUTS; a WATERMARK, BARRIER or CLOCK gets END_OF_OUTPUTS only. Outputs are published once per polled
 * batch. Idle, it sleeps on the ring's futex and heartbeats.
 *
 * Exit status: 0 when the bridge closed the ring or its process is gone; 1 on bad arguments; 2 when the
 * ring file is refused (header or token); 3 on a corrupt frame, record body or ring position, after printing it
 * and setting the closed flag (outputs of the batch that are not yet published stay unpublished).
 */
#include "flink_bridge_record.h"
#include "flink_bridge_ring.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum exit_status { EXIT_BRIDGE_GONE = 0, EXIT_USAGE = 1, EXIT_REFUSED = 2, EXIT_CORRUPT = 3 };

enum stop_reason { RUNNING, STOP_BRIDGE_GONE, STOP_CORRUPT };

#define POLL_BATCH 64
/* Also bounds how late a heartbeat or a look at the bridge can be. */
#define WAIT_NS (100 * 1000 * 1000LL)

static const fb_record_bytes ECHO_KEY = {(const unsigned char *)"echo", 4};
static const fb_record_bytes ECHO_VALUE = {(const unsigned char *)"c", 1};
static const fb_record_bytes KEY_GROUP_KEY = {(const unsigned char *)"key_group", 9};

typedef struct echo_worker {
    fb_ring_file ring;
    fb_ring_consumer inputs;
    fb_ring_producer outputs;
    enum stop_reason stop;
    fb_ring_error error; /* why it stopped */
} echo_worker;

__attribute__((format(printf, 3, 4))) static int stop(echo_worker *worker, enum stop_reason reason,
                                                      const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(worker->error.message, sizeof worker->error.message, format, arguments);
    va_end(arguments);
    worker->stop = reason;
    return 1;
}

/* Claims an output frame, waiting for room while the bridge is there. */
static fb_ring_status claim_output(echo_worker *worker, fb_frame_type type, int64_t sequence, uint32_t body_length,
                                   unsigned char **body) {
    fb_ring_status status;
    while ((status = fb_ring_producer_claim(&worker->outputs, type, 0, sequence, body_length, body, &worker->error))
           == FB_RING_NO_ROOM) {
        if (!fb_ring_keep_alive(&worker->ring, worker->error.message, sizeof worker->error.message)) {
            worker->stop = STOP_BRIDGE_GONE;
            return FB_RING_STOPPED;
        }
        /* The bridge may itself wait for room for inputs: free what is handled so it can drain answers. */
        fb_ring_consumer_release_handled(&worker->inputs);
        fb_ring_producer_await_space(&worker->outputs, WAIT_NS);
    }
    if (status == FB_RING_CORRUPT) {
        worker->stop = STOP_CORRUPT;
    }
    return status;
}

/* Answers an input whose output cannot fit the from-worker ring with an ERROR frame saying so. */
static int report_too_large(echo_worker *worker, int64_t sequence) {
    uint32_t length = (uint32_t)strlen(worker->error.message);
    uint32_t room = fb_ring_max_frame_length(worker->outputs.capacity) - FB_FRAME_HEADER_SIZE;
    length = length < room ? length : room;
    unsigned char *body;
    if (claim_output(worker, FB_FRAME_ERROR, sequence, length, &body) != FB_RING_OK) {
        return 1;
    }
    memcpy(body, worker->error.message, length);
    return 0;
}

static int corrupt_record(echo_worker *worker, int64_t sequence, const char *problem) {
    return stop(worker, STOP_CORRUPT, "%s (to-worker ring): corrupt record body in RECORD %" PRId64 ": %s",
                worker->ring.path, sequence, problem);
}

static int echo_record(echo_worker *worker, uint16_t key_group, int64_t sequence, const unsigned char *body,
                       uint32_t length) {
    fb_record_view record;
    char problem[256];
    if (!fb_record_decode(body, length, &record, problem, sizeof problem)) {
        return corrupt_record(worker, sequence, problem);
    }
    char key_group_text[8];
    fb_record_bytes key_group_value = {(const unsigned char *)key_group_text,
                                       (uint32_t)snprintf(key_group_text, sizeof key_group_text, "%u", key_group)};
    bool keyed = key_group != FB_RING_NO_KEY_GROUP;
    uint32_t output_length = length + fb_record_header_length(ECHO_KEY.length, ECHO_VALUE.length)
                             + (keyed ? fb_record_header_length(KEY_GROUP_KEY.length, key_group_value.length) : 0);
    unsigned char *output;
    fb_ring_status status = claim_output(worker, FB_FRAME_OUTPUT, sequence, output_length, &output);
    if (status == FB_RING_TOO_LARGE) {
        return report_too_large(worker, sequence);
    }
    if (status != FB_RING_OK) {
        return 1;
    }
    fb_record_writer writer;
    fb_record_begin(&writer, output, record.timestamp);
    /* The bridge may have rewritten the body since it was decoded: the walk re-checks every length, and must use
       up exactly the headers' bytes, or the copy would not fill the output just claimed for it. */
    fb_record_bytes headers = record.headers;
    for (uint32_t i = 0; i < record.header_count; i++) {
        fb_record_bytes key;
        fb_record_bytes value;
        if (!fb_record_next_header(&headers, &key, &value, problem, sizeof problem)) {
            return corrupt_record(worker, sequence, problem);
        }
        fb_record_add_header(&writer, key, value);
    }
    if (headers.length != 0) {
        return corrupt_record(worker, sequence, "its headers changed while being read");
    }
    fb_record_add_header(&writer, ECHO_KEY, ECHO_VALUE);
    if (keyed) {
        fb_record_add_header(&writer, KEY_GROUP_KEY, key_group_value);
    }
    memcpy(fb_record_finish(&writer, record.payload.length), record.payload.bytes, record.payload.length);
    return 0;
}

static int on_input(void *context, fb_frame_type type, uint16_t flags, int64_t sequence, const unsigned char *body,
                    uint32_t length) {
    echo_worker *worker = context;
    switch (type) {
    case FB_FRAME_RECORD:
        if (echo_record(worker, flags, sequence, body, length) != 0) {
            return 1;
        }
        break;
    case FB_FRAME_WATERMARK:
    case FB_FRAME_BARRIER:
    case FB_FRAME_CLOCK:
        break;
    default:
        return stop(worker, STOP_CORRUPT, "%s (to-worker ring): a %s frame (sequence %" PRId64
                                          ") is never sent to a worker",
                    worker->ring.path, fb_frame_type_name(type), sequence);
    }
    unsigned char *end_body;
    return claim_output(worker, FB_FRAME_END_OF_OUTPUTS, sequence, 0, &end_body) == FB_RING_OK ? 0 : 1;
}

static int fail_corrupt(echo_worker *worker) {
    fprintf(stderr, "fb_echo_worker: %s\n", worker->error.message);
    fb_ring_close(&worker->ring);
    return EXIT_CORRUPT;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fb_echo_worker RING_PATH TOKEN\n");
        return EXIT_USAGE;
    }
    static echo_worker worker;
    if (fb_ring_attach(&worker.ring, argv[1], argv[2], &worker.error) != FB_RING_OK) {
        fprintf(stderr, "fb_echo_worker: %s\n", worker.error.message);
        return EXIT_REFUSED;
    }
    fb_ring_consumer_init(&worker.inputs, &worker.ring, FB_RING_TO_WORKER);
    fb_ring_producer_init(&worker.outputs, &worker.ring, FB_RING_FROM_WORKER);
    for (;;) {
        int polled = fb_ring_consumer_poll(&worker.inputs, on_input, &worker, POLL_BATCH, &worker.error);
        if (polled == FB_RING_CORRUPT || worker.stop == STOP_CORRUPT) {
            /* Nothing more is published: the last output claimed may be half written. */
            return fail_corrupt(&worker);
        }
        fb_ring_producer_publish(&worker.outputs);
        if (worker.stop == STOP_BRIDGE_GONE
            || !fb_ring_keep_alive(&worker.ring, worker.error.message, sizeof worker.error.message)) {
            fb_ring_close(&worker.ring);
            return EXIT_BRIDGE_GONE;
        }
        if (polled == 0) {
            fb_ring_consumer_await_frames(&worker.inputs, WAIT_NS);
        }
    }
}
