/*
 * fb_parser_check: shows that what the parsers read from shared memory is checked where it is used, so a peer
 * that rewrites a length or a position gets an error instead of an out-of-bounds access. Built with
 * AddressSanitizer and UndefinedBehaviorSanitizer by `make check`; every body and ring image below is a heap
 * block of exactly its size, so a read or write past it is reported.
 *
 * Prints one line per check and a closing "N passed, N failed"; exits 0 only when every check passed.
 */
#include "flink_bridge_record.h"
#include "flink_bridge_ring.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed;
static int failed;

__attribute__((format(printf, 3, 4))) static void report(bool ok, const char *check, const char *format, ...) {
    char detail[FB_RING_ERROR_SIZE + 128];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(detail, sizeof detail, format, arguments);
    va_end(arguments);
    printf("%s %s: %s\n", ok ? "PASS" : "FAIL", check, detail);
    fflush(stdout);
    if (ok) {
        passed++;
    } else {
        failed++;
    }
}

/* ------------------------------------------------------------------------------------ records */

static const fb_record_bytes KEYS[] = {{(const unsigned char *)"k1", 2}, {(const unsigned char *)"key2", 4}};
static const fb_record_bytes VALUES[] = {{(const unsigned char *)"v1", 2}, {(const unsigned char *)"value2", 6}};
static const fb_record_bytes PAYLOAD = {(const unsigned char *)"payload", 7};

/* Where the encoded lengths of the sample body sit. */
enum { FIRST_KEY_LENGTH_AT = 12, SECOND_VALUE_LENGTH_AT = 12 + 4 + 2 + 4 + 2 + 4 + 4 };

/* The sample body: two headers and a payload, in a heap block of exactly its length. */
static unsigned char *sample_body(uint32_t *length) {
    *length = FB_RECORD_FIXED_LENGTH + fb_record_header_length(KEYS[0].length, VALUES[0].length)
              + fb_record_header_length(KEYS[1].length, VALUES[1].length) + PAYLOAD.length;
    unsigned char *body = malloc(*length);
    fb_record_writer writer;
    fb_record_begin(&writer, body, 42);
    for (int i = 0; i < 2; i++) {
        fb_record_add_header(&writer, KEYS[i], VALUES[i]);
    }
    memcpy(fb_record_finish(&writer, PAYLOAD.length), PAYLOAD.bytes, PAYLOAD.length);
    return body;
}

static void write_i32(unsigned char *at, int32_t value) {
    memcpy(at, &value, sizeof value);
}

/* Walks every header as the echo worker does, reading each byte; false with `problem` set when the walk is refused
   or leaves bytes over. */
static bool walk_headers(const fb_record_view *record, char *problem, size_t problem_size) {
    fb_record_bytes headers = record->headers;
    unsigned sum = 0;
    for (uint32_t i = 0; i < record->header_count; i++) {
        fb_record_bytes key;
        fb_record_bytes value;
        if (!fb_record_next_header(&headers, &key, &value, problem, problem_size)) {
            return false;
        }
        for (uint32_t b = 0; b < key.length; b++) {
            sum += key.bytes[b];
        }
        for (uint32_t b = 0; b < value.length; b++) {
            sum += value.bytes[b];
        }
    }
    if (headers.length != 0) {
        snprintf(problem, problem_size, "%" PRIu32 " bytes left over after the headers", headers.length);
        return false;
    }
    snprintf(problem, problem_size, "walked %" PRIu32 " headers (byte sum %u)", record->header_count, sum);
    return true;
}

/* Decodes the sample, rewrites the i32 at `offset` to `value` as a peer would, then walks the headers. */
static void check_rewritten_length(const char *check, size_t offset, int32_t value) {
    uint32_t length;
    unsigned char *body = sample_body(&length);
    fb_record_view record;
    char problem[256];
    if (!fb_record_decode(body, length, &record, problem, sizeof problem)) {
        report(false, check, "the sample body was refused before the rewrite: %s", problem);
    } else {
        write_i32(body + offset, value);
        bool walked = walk_headers(&record, problem, sizeof problem);
        report(!walked, check, "%s", walked ? "the walk accepted the rewritten length" : problem);
    }
    free(body);
}

static void check_records(void) {
    uint32_t length;
    unsigned char *body = sample_body(&length);
    fb_record_view record;
    char problem[256];
    bool decoded = fb_record_decode(body, length, &record, problem, sizeof problem);
    bool ok = decoded && walk_headers(&record, problem, sizeof problem) && record.header_count == 2
              && record.payload.length == PAYLOAD.length;
    report(ok, "record: an unchanged body decodes and walks", "%s", problem);
    free(body);

    check_rewritten_length("record: a key length grown after decode is refused", FIRST_KEY_LENGTH_AT, 1000);
    check_rewritten_length("record: a key length made negative after decode is refused", FIRST_KEY_LENGTH_AT, -1);
    check_rewritten_length("record: a value length grown after decode is refused", SECOND_VALUE_LENGTH_AT, INT32_MAX);
    check_rewritten_length("record: a value length shrunk after decode is refused", SECOND_VALUE_LENGTH_AT, 2);
}

/* -------------------------------------------------------------------------------------- rings */

#define CAPACITY 4096u
#define RING_PATH "fb_parser_check.ring"

/* A ring file of one to-worker ring, as the worker side sees it: a header page and CAPACITY bytes of data. */
typedef struct ring_image {
    fb_ring_file file;
    unsigned char *data;
} ring_image;

static void image_init(ring_image *image, uint64_t producer_position, uint64_t consumer_position) {
    memset(&image->file, 0, sizeof image->file);
    image->file.base = aligned_alloc(FB_RING_HEADER_SIZE, FB_RING_HEADER_SIZE + CAPACITY);
    memset(image->file.base, 0, FB_RING_HEADER_SIZE + CAPACITY);
    image->file.header = (fb_ring_header *)image->file.base;
    image->file.size = FB_RING_HEADER_SIZE + CAPACITY;
    image->file.to_worker_capacity = CAPACITY;
    image->file.from_worker_capacity = CAPACITY; /* only its data would lie past the image: it is never used */
    strcpy(image->file.path, RING_PATH);
    image->data = image->file.base + FB_RING_HEADER_SIZE;
    atomic_store(&image->file.header->to_worker.producer_position, producer_position);
    atomic_store(&image->file.header->to_worker.consumer_position, consumer_position);
}

/* Writes a frame header at a ring offset, aligned or not. */
static void put_frame(ring_image *image, uint32_t offset, int32_t length, fb_frame_type type) {
    fb_frame_header frame = {.length = length, .type = (uint16_t)type, .flags = 0, .sequence = 7};
    memcpy(image->data + offset, &frame, sizeof frame);
}

static int touch_body(void *context, fb_frame_type type, uint16_t flags, int64_t sequence,
                      const unsigned char *body, uint32_t body_length) {
    (void)type;
    (void)flags;
    (void)sequence;
    unsigned *sum = context;
    for (uint32_t b = 0; b < body_length; b++) {
        *sum += body[b];
    }
    return 0;
}

/* The error must name the ring, its direction and the bad position. */
static bool names(const fb_ring_error *error, const char *position) {
    char bad[64];
    snprintf(bad, sizeof bad, "position %s ", position);
    return strstr(error->message, RING_PATH) != NULL && strstr(error->message, "to-worker") != NULL
           && strstr(error->message, bad) != NULL;
}

static void expect_corrupt(const char *check, int status, const fb_ring_error *error, const char *bad_position) {
    if (status != FB_RING_CORRUPT) {
        report(false, check, "status %d, expected FB_RING_CORRUPT (%d)", status, FB_RING_CORRUPT);
    } else {
        report(names(error, bad_position), check, "%s", error->message);
    }
}

static void check_poll(const char *check, ring_image *image, const char *bad_position) {
    fb_ring_consumer consumer;
    fb_ring_consumer_init(&consumer, &image->file, FB_RING_TO_WORKER);
    fb_ring_error error = {{0}};
    unsigned sum = 0;
    int status = fb_ring_consumer_poll(&consumer, touch_body, &sum, 64, &error);
    expect_corrupt(check, status, &error, bad_position);
    free(image->file.base);
}

static void check_claim(const char *check, ring_image *image, const char *bad_position) {
    fb_ring_producer producer;
    fb_ring_producer_init(&producer, &image->file, FB_RING_TO_WORKER);
    fb_ring_error error = {{0}};
    unsigned char *body = NULL;
    int status = fb_ring_producer_claim(&producer, FB_FRAME_RECORD, FB_RING_NO_KEY_GROUP, 7, 16, &body, &error);
    if (status == FB_RING_OK) {
        memset(body, 0xAB, 16);
    }
    expect_corrupt(check, status, &error, bad_position);
    free(image->file.base);
}

static void check_rings(void) {
    ring_image image;

    image_init(&image, 24, 0);
    put_frame(&image, 0, 24, FB_FRAME_WATERMARK);
    fb_ring_consumer consumer;
    fb_ring_consumer_init(&consumer, &image.file, FB_RING_TO_WORKER);
    fb_ring_error error = {{0}};
    unsigned sum = 0;
    int status = fb_ring_consumer_poll(&consumer, touch_body, &sum, 64, &error);
    report(status == 1, "ring: a well-formed frame is handed over", "poll returned %d%s%s", status,
           error.message[0] == '\0' ? "" : ": ", error.message);
    free(image.file.base);

    /* The last 8-byte unit of the ring holds a frame header that runs 3 bytes past the ring's end. */
    image_init(&image, 4095 + 16, 4095);
    check_poll("ring: a consumer position of 4095 is refused", &image, "4095");

    image_init(&image, 4 + 24, 4);
    put_frame(&image, 4, 24, FB_FRAME_WATERMARK);
    check_poll("ring: an unaligned consumer position is refused", &image, "4");

    image_init(&image, 20, 0);
    put_frame(&image, 0, 20, FB_FRAME_WATERMARK);
    check_poll("ring: an unaligned producer position is refused", &image, "20");

    image_init(&image, 64 + CAPACITY + 8, 64);
    check_poll("ring: a producer position more than the capacity ahead is refused", &image, "4168");

    image_init(&image, 32, 64);
    check_poll("ring: a producer position behind the consumer is refused", &image, "32");

    /* Positions at the top of the 64-bit range: the 16-byte PADDING frame is longer than the 8 bytes published, and
       a check of head + length against the tail would wrap to 0, pass, and loop through the PADDING frame at 0. */
    image_init(&image, UINT64_MAX - 7, UINT64_MAX - 15);
    put_frame(&image, CAPACITY - 16, 16, FB_FRAME_PADDING);
    put_frame(&image, 0, CAPACITY, FB_FRAME_PADDING);
    check_poll("ring: a frame running past the published bytes at the top of the position range is refused", &image,
               "18446744073709551600");

    /* A claim there would start with a PADDING frame whose 8 bytes run 7 bytes past the ring's end. */
    image_init(&image, 4095, 4088);
    check_claim("ring: a claim at producer position 4095 is refused", &image, "4095");

    image_init(&image, 64, 128);
    check_claim("ring: a claim when the consumer position is ahead of the producer is refused", &image, "128");

    image_init(&image, 64, 4);
    check_claim("ring: a claim when the consumer position is unaligned is refused", &image, "4");
}

int main(void) {
    check_records();
    check_rings();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
