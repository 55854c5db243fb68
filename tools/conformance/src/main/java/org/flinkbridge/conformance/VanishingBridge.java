package org.flinkbridge.conformance;

import org.flinkbridge.conformance.WorkerUnderTest.KitTransport;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A bridge in a process of its own, which opens one session, has one record answered over it, and waits to be
 * killed, so the kit can check that a worker ends the session of a bridge that disappears mid-session (no
 * CloseSession, no closed flag: the process is gone).
 */
final class VanishingBridge {

    /** The line it prints once its session is open, followed by its ring file's path ({@code -} for gRPC). */
    static final String OPENED = "opened ";

    private VanishingBridge() {}

    static Process start(WorkerUnderTest worker, KitTransport transport) throws IOException {
        return new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                "-cp", System.getProperty("java.class.path"),
                VanishingBridge.class.getName(), worker.address(), worker.ringDirectory().toString(), transport.flag)
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
    }

    /** {@code ADDRESS RING_DIRECTORY shm|grpc} */
    public static void main(String[] args) throws Exception {
        WorkerUnderTest worker = WorkerUnderTest.at(args[0], Path.of(args[1]));
        WorkerUnderTest.Session session = worker.openAnswered(KitTransport.parse(args[2]));
        System.out.println(OPENED + (session.ring() != null ? session.ring() : "-"));
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
