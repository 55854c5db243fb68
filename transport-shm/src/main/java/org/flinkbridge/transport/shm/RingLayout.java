package org.flinkbridge.transport.shm;

import org.flinkbridge.protocol.KeyGroups;

/**
 * The ring file's layout, shared with {@code native/include/flink_bridge_ring.h} byte for byte. All words
 * are little-endian; positions are byte counts that only grow (the index in a ring is position & (capacity-1)).
 *
 * <pre>
 * offset  size  field
 * ------  ----  ------------------------------------------------ header page (4096 bytes)
 *      0     8  magic "FBRING01"
 *      8     4  version (1)
 *     12     4  header size (4096)
 *     16     4  to-worker ring capacity   (power of two, >= 4096)
 *     20     4  from-worker ring capacity (power of two, >= 4096)
 *     24     4  bridge pid  (for logs only: as the bridge's PID namespace numbers it)
 *     28     4  worker pid  (for logs only; 0 until the worker attaches)
 *     32    32  session token (ASCII, zero padded)
 *     64     8  bridge heartbeat (epoch ms, written by the bridge)
 *    128     8  worker heartbeat (epoch ms, written by the worker)
 *    192     4  closed flag: 0 open; CLOSED_LEFT (1) once either side has left; CLOSED_STOPPED (2) when the
 *               worker stopped as asked (SIGTERM) after answering every input it read
 *    256   256  to-worker ring control     (see below)
 *    512   256  from-worker ring control   (see below)
 *   4096   C1   to-worker ring data
 * 4096+C1  C2   from-worker ring data
 *
 * ring control block (each word on its own 64-byte cache line, so the two sides never share a line):
 *     +0     8  producer position (written by the producer only, release)
 *    +64     8  consumer position (written by the consumer only, release)
 *   +128     4  data futex: bumped by the producer to wake a consumer waiting for frames
 *   +132     4  consumer waiting count: how many of the consumer's threads sleep on the data futex
 *   +192     4  space futex: bumped by the consumer to wake a producer waiting for room
 *   +196     4  producer waiting count: how many of the producer's threads sleep on the space futex
 *
 * Liveness rests on the heartbeats and the closed flag, never on the pids: a sidecar worker and its
 * TaskManager live in different PID namespaces, where a pid names another process or none.
 *
 * frame (8-byte aligned; it never wraps: a PADDING frame fills the rest of the ring instead):
 *      0     4  length of header + body (the frame occupies length rounded up to 8)
 *      4     2  type (FrameType)
 *      6     2  flags: a RECORD's Flink key group (NO_KEY_GROUP when the stream is not keyed); 0 otherwise
 *      8     8  sequence: the input this frame is, or answers (absent from PADDING, which may be 8 bytes)
 *     16     -  body
 * </pre>
 */
public final class RingLayout {

    public static final long MAGIC = 0x3130474E49524246L; // "FBRING01" read as a little-endian long
    public static final int VERSION = 1;
    public static final int HEADER_SIZE = 4096;

    public static final int MAGIC_OFFSET = 0;
    public static final int VERSION_OFFSET = 8;
    public static final int HEADER_SIZE_OFFSET = 12;
    public static final int TO_WORKER_CAPACITY_OFFSET = 16;
    public static final int FROM_WORKER_CAPACITY_OFFSET = 20;
    public static final int BRIDGE_PID_OFFSET = 24;
    public static final int WORKER_PID_OFFSET = 28;
    public static final int TOKEN_OFFSET = 32;
    public static final int TOKEN_LENGTH = 32;
    public static final int BRIDGE_HEARTBEAT_OFFSET = 64;
    public static final int WORKER_HEARTBEAT_OFFSET = 128;
    public static final int CLOSED_OFFSET = 192;
    /** The closed flag when a side has left: ended the session, failed, or found its peer lost. */
    public static final int CLOSED_LEFT = 1;
    /** The closed flag when the worker stopped as asked (an upgrade), after answering every input it read. */
    public static final int CLOSED_STOPPED = 2;
    public static final int TO_WORKER_CONTROL_OFFSET = 256;
    public static final int FROM_WORKER_CONTROL_OFFSET = 512;

    public static final int PRODUCER_POSITION = 0;
    public static final int CONSUMER_POSITION = 64;
    public static final int DATA_FUTEX = 128;
    public static final int CONSUMER_WAITING = 132;
    public static final int SPACE_FUTEX = 192;
    public static final int PRODUCER_WAITING = 196;

    public static final int FRAME_LENGTH = 0;
    public static final int FRAME_TYPE = 4;
    public static final int FRAME_FLAGS = 6;
    public static final int FRAME_SEQUENCE = 8;
    public static final int FRAME_HEADER = 16;
    public static final int FRAME_ALIGNMENT = 8;
    /** The flags of a RECORD frame whose stream is not keyed. */
    public static final int NO_KEY_GROUP = KeyGroups.RING_NONE;

    public static final int MIN_CAPACITY = 4096;

    private RingLayout() {}

    static int align(int length) {
        return (length + FRAME_ALIGNMENT - 1) & -FRAME_ALIGNMENT;
    }

    /** The largest frame a ring takes: half of it, so a frame always fits once the ring is empty. */
    public static int maxFrameLength(int capacity) {
        return capacity / 2;
    }

    static long fileSize(int toWorkerCapacity, int fromWorkerCapacity) {
        return (long) HEADER_SIZE + toWorkerCapacity + fromWorkerCapacity;
    }
}
