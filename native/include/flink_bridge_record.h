/*
 * The body of RECORD and OUTPUT frames (transport-shm's RecordCodec.java is the same contract):
 *
 *   i64 timestamp | i32 header count | (i32 key length, key, i32 value length, value)* | i32 payload length | payload
 *
 * Little-endian, unaligned; keys and values are UTF-8, handled here as bytes. Decoding reads in place and
 * encoding writes in place: neither allocates. A body read in place may sit in shared memory that the peer
 * can still rewrite, so every length is checked where it is read, each time it is read.
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
    fb_record_bytes headers; /* the encoded (key, value) pairs, up to the payload length: walk them with
                                fb_record_next_header */
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

/*
 * Takes the (key, value) pair at the front of `headers` (a copy of a decoded view's headers) and moves
 * `headers` past it. The two lengths are read again, from a body the peer may have rewritten since
 * fb_record_decode: each is checked against what remains of `headers`, and one that does not fit returns false
 * with the problem in `problem`. After header_count pairs `headers` is empty unless the body changed; a caller
 * that relies on the headers' total size (to copy them into a frame it sized, say) must check that too.
 */
bool fb_record_next_header(fb_record_bytes *headers, fb_record_bytes *key, fb_record_bytes *value, char *problem,
                           size_t problem_size);

void fb_record_begin(fb_record_writer *writer, unsigned char *body, int64_t timestamp);

void fb_record_add_header(fb_record_writer *writer, fb_record_bytes key, fb_record_bytes value);

/* Writes the header count and the payload length; returns where the payload's bytes go. */
unsigned char *fb_record_finish(fb_record_writer *writer, uint32_t payload_length);

#endif
