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

/* Takes the length-prefixed string at the front of `rest`: its length is read once and checked against what
   remains, so a length the peer rewrote since it was last checked cannot reach past the body. */
static bool take_string(fb_record_bytes *rest, fb_record_bytes *string, char *problem, size_t problem_size) {
    if (rest->length < 4) {
        snprintf(problem, problem_size, "the record body ends inside its headers");
        return false;
    }
    int32_t length = read_i32(rest->bytes);
    if (length < 0 || (uint32_t)length > rest->length - 4) {
        snprintf(problem, problem_size, "a header of %" PRId32 " bytes runs past the body", length);
        return false;
    }
    string->bytes = rest->bytes + 4;
    string->length = (uint32_t)length;
    rest->bytes = string->bytes + string->length;
    rest->length -= 4 + string->length;
    return true;
}

bool fb_record_next_header(fb_record_bytes *headers, fb_record_bytes *key, fb_record_bytes *value, char *problem,
                           size_t problem_size) {
    return take_string(headers, key, problem, problem_size) && take_string(headers, value, problem, problem_size);
}

bool fb_record_decode(const unsigned char *body, uint32_t length, fb_record_view *record, char *problem,
                      size_t problem_size) {
    if (length < FB_RECORD_FIXED_LENGTH) {
        snprintf(problem, problem_size, "a record body of %" PRIu32 " bytes is shorter than %d", length,
                 FB_RECORD_FIXED_LENGTH);
        return false;
    }
    memcpy(&record->timestamp, body, sizeof record->timestamp);
    int32_t count = read_i32(body + 8);
    /* Each header takes at least its two 4-byte lengths. */
    if (count < 0 || count > (int64_t)(length - FB_RECORD_FIXED_LENGTH) / 8) {
        snprintf(problem, problem_size, "impossible header count %" PRId32, count);
        return false;
    }
    fb_record_bytes headers = {body + 12, length - 12};
    fb_record_bytes rest = headers;
    for (int32_t i = 0; i < count; i++) {
        fb_record_bytes key;
        fb_record_bytes value;
        if (!fb_record_next_header(&rest, &key, &value, problem, problem_size)) {
            return false;
        }
    }
    if (rest.length < 4) {
        snprintf(problem, problem_size, "the record body ends before its payload length");
        return false;
    }
    int32_t payload_length = read_i32(rest.bytes);
    if (payload_length < 0 || (uint32_t)payload_length != rest.length - 4) {
        snprintf(problem, problem_size,
                 "payload length %" PRId32 " does not match the body's remaining %" PRIu32 " bytes", payload_length,
                 rest.length - 4);
        return false;
    }
    record->header_count = (uint32_t)count;
    record->headers.bytes = headers.bytes;
    record->headers.length = headers.length - rest.length;
    record->payload.bytes = rest.bytes + 4;
    record->payload.length = (uint32_t)payload_length;
    return true;
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
