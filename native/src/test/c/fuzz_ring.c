/*
 * libFuzzer harness for the ring. An input becomes the worker's view of a ring file with one small to-worker
 * ring, in a heap block of exactly its size, so the sanitizers report any access past the ring:
 *
 *   u8 capacity (64 << (byte % 7): 64 to 4096 bytes, so frames wrap often) | u64 consumer position |
 *   i16 producer position - consumer position | 4 x u16 body lengths to claim | ring data (zero padded)
 *
 * The positions are whatever a peer could have written: unaligned, far apart, backwards. The consumer polls in
 * small batches with a handler that reads every body byte (and now and then releases early or stops); then a
 * producer claims frames of the given body lengths, filling each body, publishing each, and draining the ring
 * through the consumer when it is full.
 */
#include "flink_bridge_ring.h"

#include <stdlib.h>
#include <string.h>

enum { CLAIMS = 4, PREFIX_LENGTH = 1 + 8 + 2 + CLAIMS * 2, POLL_LIMIT = 3, MAX_POLLS = 4096 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink; /* keeps the handler's byte reads from being optimized away */

/* Reads every body byte; as the data says, also releases the frames before this one, as a handler that must
   wait does, or stops the poll. */
static int read_body(void *context, fb_frame_type type, uint16_t flags, int64_t sequence,
                     const unsigned char *body, uint32_t body_length) {
    unsigned sum = (unsigned)type + flags + (unsigned)sequence;
    for (uint32_t b = 0; b < body_length; b++) {
        sum += body[b];
    }
    sink = sum;
    if (sum % 5 == 0) {
        fb_ring_consumer_release_handled(context);
    }
    return sum % 7 == 0;
}

/* Polls until the ring is empty; false when the consumer refused the ring. */
static bool drain(fb_ring_consumer *consumer) {
    fb_ring_error error;
    for (int i = 0; i < MAX_POLLS; i++) {
        int polled = fb_ring_consumer_poll(consumer, read_body, consumer, POLL_LIMIT, &error);
        if (polled == 0 || polled == FB_RING_CORRUPT) {
            return polled == 0;
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < PREFIX_LENGTH) {
        return 0;
    }
    uint32_t capacity = 64u << (data[0] % 7);
    uint64_t consumer_position;
    int16_t ahead;
    uint16_t claims[CLAIMS];
    memcpy(&consumer_position, data + 1, sizeof consumer_position);
    memcpy(&ahead, data + 9, sizeof ahead);
    memcpy(claims, data + 11, sizeof claims);

    static fb_ring_file ring;
    ring.base = aligned_alloc(FB_RING_CACHE_LINE, FB_RING_HEADER_SIZE + capacity);
    memset(ring.base, 0, FB_RING_HEADER_SIZE + capacity);
    ring.header = (fb_ring_header *)ring.base;
    ring.size = FB_RING_HEADER_SIZE + capacity;
    ring.to_worker_capacity = capacity;
    ring.from_worker_capacity = capacity; /* its data would lie past the block: never used */
    strcpy(ring.path, "fuzz.ring");
    size_t ring_bytes = size - PREFIX_LENGTH < capacity ? size - PREFIX_LENGTH : capacity;
    memcpy(ring.base + FB_RING_HEADER_SIZE, data + PREFIX_LENGTH, ring_bytes);
    atomic_store(&ring.header->to_worker.consumer_position, consumer_position);
    atomic_store(&ring.header->to_worker.producer_position, consumer_position + (uint64_t)(int64_t)ahead);

    fb_ring_consumer consumer;
    fb_ring_consumer_init(&consumer, &ring, FB_RING_TO_WORKER);
    if (drain(&consumer)) {
        fb_ring_producer producer;
        fb_ring_producer_init(&producer, &ring, FB_RING_TO_WORKER);
        fb_ring_error error;
        for (int i = 0; i < CLAIMS; i++) {
            unsigned char *body;
            fb_ring_status status
                = fb_ring_producer_claim(&producer, FB_FRAME_RECORD, (uint16_t)i, i, claims[i], &body, &error);
            if (status == FB_RING_NO_ROOM && drain(&consumer)) {
                status = fb_ring_producer_claim(&producer, FB_FRAME_RECORD, (uint16_t)i, i, claims[i], &body, &error);
                if (status == FB_RING_NO_ROOM) {
                    abort(); /* a drained ring has room for any frame of up to half its capacity */
                }
            }
            if (status == FB_RING_OK) {
                memset(body, i, claims[i]);
                fb_ring_producer_publish(&producer);
            }
        }
        drain(&consumer);
    }
    free(ring.base);
    return 0;
}
