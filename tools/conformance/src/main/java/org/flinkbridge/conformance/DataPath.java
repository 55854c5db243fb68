package org.flinkbridge.conformance;

import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimerFiring;

import java.io.IOException;
import java.util.List;

/** One session's data plane, as the kit drives it: well-formed inputs, a few malformed ones, and the answers. */
interface DataPath extends AutoCloseable {

    /** @param keyGroup the record's Flink key group, or {@code KeyGroups.NONE} */
    void record(long sequence, int keyGroup, KitRecord record) throws IOException;

    /**
     * A record of a keyed session (docs/protocol.md, "Cells"), with its key: over shm an i32 little-endian key length
     * and the key before the record body, on the gRPC stream the frame's {@code key}.
     */
    void record(long sequence, int keyGroup, byte[] key, KitRecord record) throws IOException;

    /** A LOAD of {@code cells}, part of input {@code sequence}: the record of that sequence follows. */
    void load(long sequence, KeyCells cells) throws IOException;

    /**
     * A TIMER of {@code key} (docs/protocol.md, "Timers"): over shm the key behind its i32 little-endian length, then
     * the {@code TimerFiring}'s encoding, the key group in the flags; on the gRPC stream the frame's {@code key},
     * {@code key_group} and {@code firing}.
     */
    void timer(long sequence, int keyGroup, byte[] key, TimerFiring firing) throws IOException;

    void watermark(long sequence, long timestamp) throws IOException;

    void barrier(long sequence, long checkpointId) throws IOException;

    /**
     * A BARRIER naming keys to evict once it is answered: over shm after the checkpoint id, each an i32 little-endian
     * length and the key; on the gRPC stream the frame's {@code evict}.
     */
    void barrier(long sequence, long checkpointId, List<byte[]> evict) throws IOException;

    void clock(long sequence, long processingTimeMillis) throws IOException;

    /** Sends input {@code sequence} malformed as {@code how}, which this transport must carry. */
    void misbehave(Misbehaviour how, long sequence) throws IOException;

    /**
     * Every answer up to the one that ends input {@code sequence} (its {@code END_OF_OUTPUTS} or {@code ERROR}).
     *
     * @throws SessionEnded when the worker ends the session first
     * @throws IOException  when nothing ends that input within {@code timeoutMillis}
     */
    List<Answer> answersThrough(long sequence, long timeoutMillis) throws IOException;

    /** Whether the worker ended the session as stopped (asked to stop): the ring's flag, or its stream completed. */
    boolean endedAsStopped();

    /** Whether some answers came for an input whose end has not: after the session ended, an input cut short. */
    boolean partlyAnswered();

    @Override
    void close();

    /** Inputs a bridge never sends, each of which a worker must refuse without crashing (docs/protocol.md, "Bad input"). */
    enum Misbehaviour {
        /** A RECORD whose body says it holds a million headers. */
        CORRUPT_RECORD_BODY("a record body whose lengths run past it"),
        /** A frame whose length is more than the bytes published (shm) or a message over 64 MiB (gRPC). */
        OVERSIZE_FRAME("an oversize frame"),
        /** A frame of a type the bridge never sends (OUTPUT). */
        FOREIGN_FRAME_TYPE("a frame of a type only a worker sends");

        final String description;

        Misbehaviour(String description) {
            this.description = description;
        }

        /** Whether the transport can carry it: a record body on the gRPC stream is protobuf's to decode. */
        boolean carriedBy(WorkerUnderTest.KitTransport transport) {
            return this != CORRUPT_RECORD_BODY || transport == WorkerUnderTest.KitTransport.SHM;
        }
    }

    /** The worker ended the session (closed the ring, ended the stream): the answer to bad input, or a fault. */
    final class SessionEnded extends IOException {
        SessionEnded(String why) {
            super(why);
        }
    }
}
