/*
 * The body of RECORD and OUTPUT frames (transport-shm's RecordCodec.java is the same contract):
 *
 *   i64 timestamp | i32 header count | (i32 key length, key, i32 value length, value)* | i32 payload length | payload
 *
 * Little-endian, unaligned; keys and values are UTF-8, handled here as bytes. Decoding reads in place and
 * encoding writes in place: neither allocates.
 */
#ifndef FLINK_BRIDGE_RECORD_H
#define FLINK_BRIDGE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* timestamp, header count and payload length */
#define FB_RECORD_FIXED_LENGTH 16

typedef struct fb_record_bytes {
    const unsigned char *bytes;
    uint32_t length;
} fb_record_bytes;

/* A decoded body: its fields point into the body it was decoded from. */
typedef struct fb_record_view {
    int64_t timestamp;
    uint32_t header_count;
    const unsigned char *headers; /* the first encoded (key, value) pair; walk them with fb_record_next_header */
    fb_record_bytes payload;
} fb_record_view;

/* Builds a body in place: begin, add headers, then finish with the payload length. */
typedef struct fb_record_writer {
    unsigned char *header_count_at;
    unsigned char *at;
    uint32_t header_count;
} fb_record_writer;

/* The encoded size of one header. */
uint32_t fb_record_header_length(uint32_t key_length, uint32_t value_length);

/*
 * Decodes `length` bytes at `body`, checking every length against the body's end. Returns false with the
 * problem in `problem` when the body is impossible.
 */
bool fb_record_decode(const unsigned char *body, uint32_t length, fb_record_view *record, char *problem,
                      size_t problem_size);

/* Reads the header pair at `*at` of a body fb_record_decode accepted, and moves `*at` past it. */
void fb_record_next_header(const unsigned char **at, fb_record_bytes *key, fb_record_bytes *value);

void fb_record_begin(fb_record_writer *writer, unsigned char *body, int64_t timestamp);

void fb_record_add_header(fb_record_writer *writer, fb_record_bytes key, fb_record_bytes value);

/* Writes the header count and the payload length; returns where the payload's bytes go. */
unsigned char *fb_record_finish(fb_record_writer *writer, uint32_t payload_length);

#endif
