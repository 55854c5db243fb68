/*
 * fb_produce RING_PATH TOKEN COUNT [--body-size N] [--die-after K]
 *
 * A producer written against the C ring library, for testing the Java consumer. It attaches as the worker
 * and writes COUNT OUTPUT frames on the from-worker ring: frame i has sequence i and the record timestamp
 * 1000+i, header "i": "<i>", and a payload of i % 300 bytes (N with --body-size) where byte b is
 * (uint8)(i*31 + b). It publishes every 16 frames and at the end, waits for room when the ring is full, then
 * waits until the bridge has consumed everything (or left) and closes the ring.
 *
 * --die-after K publishes frames 0..K-1, claims frame K, writes its record header and half its payload,
 * and kills itself with SIGKILL: a peer that dies mid-frame.
 *
 * Exit status: 0 when done, or when the bridge left (a message says so if frames were left unwritten);
 * 1 on bad arguments; 2 when the ring file is refused (header or token); 3 when the ring's shared positions
 * are impossible (a message names the bad one); 4 when a frame can never fit the ring (larger than half its
 * capacity), before anything is written.
 */
#include "flink_bridge_record.h"
#include "flink_bridge_ring.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum exit_status { EXIT_DONE = 0, EXIT_USAGE = 1, EXIT_REFUSED = 2, EXIT_CORRUPT = 3, EXIT_TOO_LARGE = 4 };

#define PUBLISH_EVERY 16
#define NATURAL_PAYLOAD_MODULUS 300
#define WAIT_NS (100 * 1000 * 1000LL)

static const fb_record_bytes INDEX_KEY = {(const unsigned char *)"i", 1};

typedef struct produce_options {
    const char *path;
    const char *token;
    int64_t count;
    int64_t body_size; /* -1: i % 300 */
    int64_t die_after; /* -1: never */
} produce_options;

static int usage(const char *problem) {
    fprintf(stderr, "fb_produce: %s\nusage: fb_produce RING_PATH TOKEN COUNT [--body-size N] [--die-after K]\n",
            problem);
    return EXIT_USAGE;
}

/* A decimal number from 0 to `max`, or -1. */
static int64_t parse_count(const char *text, int64_t max) {
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && value >= 0 && value <= max ? value : -1;
}

static int parse_options(int argc, char **argv, produce_options *parsed) {
    if (argc < 4) {
        return usage("RING_PATH, TOKEN and COUNT are required");
    }
    parsed->path = argv[1];
    parsed->token = argv[2];
    parsed->count = parse_count(argv[3], INT64_MAX);
    parsed->body_size = -1;
    parsed->die_after = -1;
    if (parsed->count < 0) {
        return usage("COUNT must be a non-negative number");
    }
    for (int i = 4; i < argc; i += 2) {
        if (i + 1 >= argc) {
            return usage("an option lacks its value");
        }
        if (strcmp(argv[i], "--body-size") == 0 && (parsed->body_size = parse_count(argv[i + 1], INT32_MAX)) >= 0) {
            continue;
        }
        if (strcmp(argv[i], "--die-after") == 0 && (parsed->die_after = parse_count(argv[i + 1], INT64_MAX)) >= 0
            && parsed->die_after < parsed->count) {
            continue;
        }
        return usage("unknown option, or a bad value (--body-size takes 0 to 2^31-1 bytes, --die-after K < COUNT)");
    }
    return EXIT_DONE;
}

/* Frame i: its header value and sizes. */
typedef struct frame_spec {
    int64_t index;
    char value[24];
    fb_record_bytes header_value;
    uint32_t payload_length;
    uint32_t body_length;
} frame_spec;

static void describe(frame_spec *frame, int64_t index, const produce_options *options) {
    frame->index = index;
    int value_length = snprintf(frame->value, sizeof frame->value, "%" PRId64, index);
    frame->header_value = (fb_record_bytes){(const unsigned char *)frame->value, (uint32_t)value_length};
    frame->payload_length = (uint32_t)(options->body_size >= 0 ? options->body_size : index % NATURAL_PAYLOAD_MODULUS);
    frame->body_length = FB_RECORD_FIXED_LENGTH + fb_record_header_length(INDEX_KEY.length, (uint32_t)value_length)
                         + frame->payload_length;
}

/* Encodes the body; only the first `payload_written` payload bytes are filled (fewer for a torn frame). */
static void encode(unsigned char *body, const frame_spec *frame, uint32_t payload_written) {
    fb_record_writer writer;
    fb_record_begin(&writer, body, 1000 + frame->index);
    fb_record_add_header(&writer, INDEX_KEY, frame->header_value);
    unsigned char *payload = fb_record_finish(&writer, frame->payload_length);
    for (uint32_t b = 0; b < payload_written; b++) {
        payload[b] = (unsigned char)(frame->index * 31 + b);
    }
}

/* Claims frame i, waiting for room while the bridge is there; returns NO_ROOM when the bridge left. */
static fb_ring_status claim(fb_ring_file *ring, fb_ring_producer *producer, const frame_spec *frame,
                            unsigned char **body, fb_ring_error *error) {
    fb_ring_status status;
    while ((status = fb_ring_producer_claim(producer, FB_FRAME_OUTPUT, 0, frame->index, frame->body_length, body,
                                            error)) == FB_RING_NO_ROOM) {
        if (!fb_ring_keep_alive(ring, error->message, sizeof error->message)) {
            return FB_RING_NO_ROOM;
        }
        fb_ring_producer_await_space(producer, WAIT_NS);
    }
    return status;
}

static void die_mid_frame(fb_ring_file *ring, fb_ring_producer *producer, const frame_spec *frame) {
    fb_ring_producer_publish(producer);
    unsigned char *body;
    fb_ring_error error;
    if (claim(ring, producer, frame, &body, &error) == FB_RING_OK) {
        encode(body, frame, frame->payload_length / 2);
    }
    raise(SIGKILL);
}

int main(int argc, char **argv) {
    static produce_options options;
    int usage_status = parse_options(argc, argv, &options);
    if (usage_status != EXIT_DONE) {
        return usage_status;
    }
    static fb_ring_file ring;
    static fb_ring_error error;
    if (fb_ring_attach(&ring, options.path, options.token, &error) != FB_RING_OK) {
        fprintf(stderr, "fb_produce: %s\n", error.message);
        return EXIT_REFUSED;
    }
    fb_ring_producer producer;
    fb_ring_producer_init(&producer, &ring, FB_RING_FROM_WORKER);
    for (int64_t i = 0; i < options.count; i++) {
        frame_spec frame;
        describe(&frame, i, &options);
        if (i == options.die_after) {
            die_mid_frame(&ring, &producer, &frame);
        }
        unsigned char *body;
        fb_ring_status status = claim(&ring, &producer, &frame, &body, &error);
        if (status == FB_RING_TOO_LARGE || status == FB_RING_CORRUPT) {
            fprintf(stderr, "fb_produce: %s\n", error.message);
            fb_ring_close(&ring);
            return status == FB_RING_TOO_LARGE ? EXIT_TOO_LARGE : EXIT_CORRUPT;
        }
        if (status != FB_RING_OK) {
            fprintf(stderr, "fb_produce: stopping before frame %" PRId64 " of %" PRId64 ": %s\n", i, options.count,
                    error.message);
            fb_ring_close(&ring);
            return EXIT_DONE;
        }
        encode(body, &frame, frame.payload_length);
        if (i % PUBLISH_EVERY == PUBLISH_EVERY - 1) {
            fb_ring_producer_publish(&producer);
        }
    }
    fb_ring_producer_publish(&producer);
    while (!fb_ring_producer_drained(&producer) && fb_ring_keep_alive(&ring, error.message, sizeof error.message)) {
        fb_ring_producer_await_space(&producer, WAIT_NS);
    }
    fb_ring_close(&ring);
    return EXIT_DONE;
}
