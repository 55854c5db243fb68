/* The record body codec: see flink_bridge_record.h. */
#include "flink_bridge_record.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Fields are copied with memcpy in host order, which must be the body's order. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "record bodies are little-endian");

static int32_t read_i32(const unsigned char *at) {
    int32_t value;
    memcpy(&value, at, sizeof value);
    return value;
}

static unsigned char *write_i32(unsigned char *at, int32_t value) {
    memcpy(at, &value, sizeof value);
    return at + sizeof value;
}

static unsigned char *write_bytes(unsigned char *at, fb_record_bytes text) {
    at = write_i32(at, (int32_t)text.length);
    memcpy(at, text.bytes, text.length);
    return at + text.length;
}

uint32_t fb_record_header_length(uint32_t key_length, uint32_t value_length) {
    return 4 + key_length + 4 + value_length;
}

/* Checks the length-prefixed string at `offset`; returns the offset after it, or -1 when it runs past `end`. */
static int64_t skip_string(const unsigned char *body, int64_t offset, int64_t end, char *problem, size_t problem_size) {
    if (offset + 4 > end) {
        snprintf(problem, problem_size, "the record body ends inside its headers");
        return -1;
    }
    int32_t length = read_i32(body + offset);
    if (length < 0 || offset + 4 + length > end) {
        snprintf(problem, problem_size, "a header of %" PRId32 " bytes runs past the body", length);
        return -1;
    }
    return offset + 4 + length;
}

bool fb_record_decode(const unsigned char *body, uint32_t length, fb_record_view *record, char *problem,
                      size_t problem_size) {
    if (length < FB_RECORD_FIXED_LENGTH) {
        snprintf(problem, problem_size, "a record body of %" PRIu32 " bytes is shorter than %d", length,
                 FB_RECORD_FIXED_LENGTH);
        return false;
    }
    int64_t end = length;
    memcpy(&record->timestamp, body, sizeof record->timestamp);
    int32_t count = read_i32(body + 8);
    /* Each header takes at least its two 4-byte lengths. */
    if (count < 0 || count > (int64_t)(length - FB_RECORD_FIXED_LENGTH) / 8) {
        snprintf(problem, problem_size, "impossible header count %" PRId32, count);
        return false;
    }
    int64_t offset = 12;
    for (int32_t i = 0; i < 2 * count && offset >= 0; i++) {
        offset = skip_string(body, offset, end, problem, problem_size);
    }
    if (offset < 0) {
        return false;
    }
    if (offset + 4 > end) {
        snprintf(problem, problem_size, "the record body ends before its payload length");
        return false;
    }
    int32_t payload_length = read_i32(body + offset);
    if (payload_length < 0 || offset + 4 + payload_length != end) {
        snprintf(problem, problem_size, "payload length %" PRId32 " does not match the body's remaining %" PRId64
                                        " bytes",
                 payload_length, end - offset - 4);
        return false;
    }
    record->header_count = (uint32_t)count;
    record->headers = body + 12;
    record->payload.bytes = body + offset + 4;
    record->payload.length = (uint32_t)payload_length;
    return true;
}

void fb_record_next_header(const unsigned char **at, fb_record_bytes *key, fb_record_bytes *value) {
    key->length = (uint32_t)read_i32(*at);
    key->bytes = *at + 4;
    *at = key->bytes + key->length;
    value->length = (uint32_t)read_i32(*at);
    value->bytes = *at + 4;
    *at = value->bytes + value->length;
}

void fb_record_begin(fb_record_writer *writer, unsigned char *body, int64_t timestamp) {
    memcpy(body, &timestamp, sizeof timestamp);
    writer->header_count_at = body + 8;
    writer->at = body + 12;
    writer->header_count = 0;
}

void fb_record_add_header(fb_record_writer *writer, fb_record_bytes key, fb_record_bytes value) {
    writer->at = write_bytes(writer->at, key);
    writer->at = write_bytes(writer->at, value);
    writer->header_count++;
}

unsigned char *fb_record_finish(fb_record_writer *writer, uint32_t payload_length) {
    write_i32(writer->header_count_at, (int32_t)writer->header_count);
    return write_i32(writer->at, (int32_t)payload_length);
}
