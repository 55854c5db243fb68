/*
 * libFuzzer harness for the record codec. An input is a rewrite and a body:
 *
 *   u16 offset | i32 value | body
 *
 * A body fb_record_decode accepts must walk to exactly its payload and encode back to the same bytes. Then the
 * i32 at `offset` (modulo the body's length) is rewritten, as a peer sharing the body could do after the decode,
 * and the headers are walked again: the walk may refuse, but must never read past the body. The sanitizers
 * report any read or write out of bounds; a broken promise aborts.
 */
#include "flink_bridge_record.h"

#include <stdlib.h>
#include <string.h>

enum { REWRITE_LENGTH = 6 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink; /* keeps the byte reads of the walk from being optimized away */

/* Walks every header, reading its bytes; false when the walk refuses or leaves bytes over. */
static bool walk(const fb_record_view *record) {
    fb_record_bytes headers = record->headers;
    char problem[256];
    unsigned sum = 0;
    for (uint32_t i = 0; i < record->header_count; i++) {
        fb_record_bytes key;
        fb_record_bytes value;
        if (!fb_record_next_header(&headers, &key, &value, problem, sizeof problem)) {
            return false;
        }
        for (uint32_t b = 0; b < key.length; b++) {
            sum += key.bytes[b];
        }
        for (uint32_t b = 0; b < value.length; b++) {
            sum += value.bytes[b];
        }
    }
    sink = sum;
    return headers.length == 0;
}

/* Encodes the decoded record into a block of the body's size, which the sanitizers bound. */
static unsigned char *encode(const fb_record_view *record, uint32_t length) {
    unsigned char *copy = malloc(length);
    fb_record_writer writer;
    fb_record_begin(&writer, copy, record->timestamp);
    fb_record_bytes headers = record->headers;
    char problem[256];
    for (uint32_t i = 0; i < record->header_count; i++) {
        fb_record_bytes key;
        fb_record_bytes value;
        if (!fb_record_next_header(&headers, &key, &value, problem, sizeof problem)) {
            abort(); /* the body did not change since the decode accepted it */
        }
        fb_record_add_header(&writer, key, value);
    }
    memcpy(fb_record_finish(&writer, record->payload.length), record->payload.bytes, record->payload.length);
    return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < REWRITE_LENGTH || size - REWRITE_LENGTH > UINT32_MAX) {
        return 0;
    }
    uint16_t offset;
    int32_t value;
    memcpy(&offset, data, sizeof offset);
    memcpy(&value, data + sizeof offset, sizeof value);
    uint32_t length = (uint32_t)(size - REWRITE_LENGTH);
    /* A block of exactly the body's length, so a read one byte past it is reported. */
    unsigned char *body = malloc(length);
    memcpy(body, data + REWRITE_LENGTH, length);

    fb_record_view record;
    char problem[256];
    if (fb_record_decode(body, length, &record, problem, sizeof problem)) {
        if (!walk(&record)) {
            abort(); /* an accepted body walks to its payload */
        }
        unsigned char *copy = encode(&record, length);
        if (memcmp(copy, body, length) != 0) {
            abort(); /* decoding and encoding round-trip */
        }
        free(copy);
        if (length >= sizeof value) {
            memcpy(body + offset % (length - sizeof value + 1), &value, sizeof value);
            walk(&record);
        }
    }
    free(body);
    return 0;
}
