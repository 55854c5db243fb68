package org.flinkbridge.bridge.session;

import io.grpc.ManagedChannel;
import org.flinkbridge.proto.control.SessionIdentity;

import java.util.function.Supplier;

/**
 * What a transport needs to open one session: its spec and identity, the gRPC channel to the worker, and how to
 * name the worker and the subtask in messages.
 *
 * @param peer the worker as messages name it, e.g. {@code worker at unix:/dev/shm/... (pid 42)}
 * @param subtask the subtask as messages name it, e.g. {@code subtask 0/2}
 * @param workerExit why a spawned worker stopped answering, when this JVM knows (its exit), else null
 */
public record SessionOpening(SessionSpec spec, SessionIdentity identity, ManagedChannel grpc, String peer,
                             String subtask, Supplier<String> workerExit) {

    /** The session's name in messages, once the worker has given it the id {@code sessionId}. */
    String sessionName(String sessionId) {
        return "session " + sessionId + " (" + segment() + ", " + peer + ")";
    }

    /** The segment and subtask, e.g. {@code segment 0 'example' subtask 0/2}. */
    String segment() {
        return "segment " + spec.segmentId() + " '" + spec.segmentName() + "' " + subtask;
    }
}
