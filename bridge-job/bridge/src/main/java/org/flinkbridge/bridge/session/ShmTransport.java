package org.flinkbridge.bridge.session;

import org.flinkbridge.proto.control.ShmRing;
import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.protocol.SessionTokens;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;

/** Records through two rings in a shared-memory file the bridge creates per session; gRPC for control only. */
final class ShmTransport implements SessionTransport {

    static final ShmTransport INSTANCE = new ShmTransport();

    private static final Logger LOG = LoggerFactory.getLogger(ShmTransport.class);

    private ShmTransport() {}

    @Override
    public TransportSession open(SessionOpening opening) throws IOException {
        SessionSpec spec = opening.spec();
        String token = SessionTokens.random();
        RingFile ring = createRing(spec.shm(), token);
        try {
            ShmRing mapping = ShmRing.newBuilder()
                    .setPath(ring.path().toString())
                    .setToWorkerCapacity(spec.shm().ringCapacity())
                    .setFromWorkerCapacity(spec.shm().ringCapacity())
                    .setLivenessTimeoutMs((int) spec.shm().livenessTimeoutMillis())
                    .build();
            return ControlServiceSession.open(opening, TransportKind.TRANSPORT_KIND_SHM, mapping, token,
                    (sessionId, name) -> new ShmChannel(ring, name, spec.shm().livenessTimeoutMillis(),
                            spec.workerTimeoutMillis(), opening.workerExit()), "shared memory (" + ring.path() + ")");
        } catch (IOException | RuntimeException e) {
            try {
                ring.close();
            } catch (IOException closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
    }

    @Override
    public boolean recoversInPlace() {
        return true;
    }

    /** A new ring file in the configured directory, after removing any left there by crashed processes. */
    private static RingFile createRing(SessionSpec.ShmSettings shm, String token) throws IOException {
        Path directory = Path.of(shm.directory());
        int stale = RingFiles.cleanStaleOnce(directory);
        if (stale > 0) {
            LOG.info("removed {} ring file(s) left in {} by processes that are gone", stale, directory);
        }
        return RingFile.create(RingFiles.newSessionPath(directory), shm.ringCapacity(), shm.ringCapacity(), token);
    }
}
