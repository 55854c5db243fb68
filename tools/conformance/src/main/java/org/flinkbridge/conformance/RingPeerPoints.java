package org.flinkbridge.conformance;

import org.flinkbridge.conformance.DataPath.Misbehaviour;
import org.flinkbridge.conformance.DataPath.SessionEnded;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.protocol.SessionTokens;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingFiles;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.flinkbridge.conformance.Report.require;

/**
 * The data-plane points of docs/protocol.md for a peer that serves one ring file and nothing else, such as a
 * worker built on the C ring library: the kit creates the ring and starts {@code COMMAND RING_PATH TOKEN}, one
 * fresh peer per point. What the peer outputs is its own; the points check the framing, the order, the refusal
 * of bad input and the end of the session.
 */
final class RingPeerPoints {

    private static final long ANSWER_MILLIS = 20_000;
    private static final long EXIT_MILLIS = 10_000;
    private static final long START_MILLIS = 20_000;
    private static final int CAPACITY = 1 << 16;
    /** A process killed by a signal exits, as Java sees it, with 128 plus the signal's number. */
    private static final int KILLED_BY_A_SIGNAL = 128;

    private final List<String> command;
    private final Path ringDirectory;
    private final boolean echo;
    private final Report report;

    RingPeerPoints(List<String> command, Path ringDirectory, boolean echo, Report report) {
        this.command = command;
        this.ringDirectory = ringDirectory;
        this.echo = echo;
        this.report = report;
    }

    void run() {
        String over = " (shm, ring peer)";
        report.check("records: each is answered in input order, its outputs before its END_OF_OUTPUTS" + over,
                () -> withPeer((peer, data) -> {
                    int count = 300;
                    for (int i = 0; i < count; i++) {
                        data.record(i, ContractPoints.keyGroup(i), ContractPoints.input(i));
                    }
                    requireNoError(data.answersThrough(count - 1, ANSWER_MILLIS));
                }));
        report.check("watermarks and barriers: each is answered after every earlier input" + over,
                () -> withPeer((peer, data) -> {
                    data.record(0, KeyGroups.NONE, ContractPoints.input(0));
                    data.watermark(1, 100);
                    data.record(2, 42, ContractPoints.input(2));
                    data.barrier(3, 7);
                    data.watermark(4, Long.MAX_VALUE);
                    requireNoError(data.answersThrough(4, ANSWER_MILLIS));
                }));
        for (Misbehaviour how : Misbehaviour.values()) {
            report.check("bad input: " + how.description + " is answered with ERROR or ends the session, without a"
                    + " crash" + over, () -> withPeer((peer, data) -> {
                        data.record(0, KeyGroups.NONE, ContractPoints.input(0));
                        data.answersThrough(0, ANSWER_MILLIS);
                        data.misbehave(how, 1);
                        try {
                            Answer last = data.answersThrough(1, ANSWER_MILLIS).getLast();
                            require(last.type() == FrameType.ERROR, "the peer accepted it: answered " + last);
                        } catch (SessionEnded ended) {
                            requireCleanExit(peer);
                        }
                    }));
        }
        report.check("bridge gone: the peer ends its session once the bridge closes the ring" + over,
                () -> withPeer((peer, data) -> {
                    data.close();
                    requireCleanExit(peer);
                }));
    }

    /**
     * No input failed. The order needs no check here: the answer log refuses an answer to any input but the
     * oldest open one as it arrives, so answers through the last input's end are one end per input, in order.
     */
    private static void requireNoError(List<Answer> answers) throws Report.Broken {
        for (Answer answer : answers) {
            require(answer.type() != FrameType.ERROR, "the peer failed #" + answer.sequence() + ": " + answer.error());
        }
    }

    private static void requireCleanExit(Process peer) throws Exception {
        require(peer.waitFor(EXIT_MILLIS, TimeUnit.MILLISECONDS), "the peer ended its session but its process is"
                + " still running after " + EXIT_MILLIS + " ms");
        require(peer.exitValue() < KILLED_BY_A_SIGNAL, "the peer crashed: exit status " + peer.exitValue());
    }

    @FunctionalInterface
    private interface PeerCheck {
        void run(Process peer, ShmPath data) throws Exception;
    }

    /** Waits for the peer's first heartbeat in the ring: until then it has not attached. */
    private static void awaitAttached(RingFile ring, Process peer) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(START_MILLIS);
        while (ring.peerSilenceMillis() > ShmPath.LIVENESS_MILLIS) {
            if (!peer.isAlive()) {
                throw new Report.Broken("the peer exited with status " + peer.exitValue() + " before it attached to"
                        + " the ring");
            }
            require(System.nanoTime() < deadline, "the peer wrote no heartbeat into the ring within " + START_MILLIS
                    + " ms");
            Thread.sleep(10);
        }
    }

    private void withPeer(PeerCheck check) throws Exception {
        String token = SessionTokens.random();
        RingFile ring = RingFile.create(RingFiles.newSessionPath(ringDirectory),
                CAPACITY, CAPACITY, token);
        List<String> started = new ArrayList<>(command);
        started.addAll(List.of(ring.path().toString(), token));
        Process peer;
        try {
            peer = new ProcessBuilder(started).redirectErrorStream(true)
                    .redirectOutput(echo ? ProcessBuilder.Redirect.INHERIT : ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            ring.close();
            throw new IOException("cannot start " + String.join(" ", started) + ": " + e.getMessage(), e);
        }
        try (ShmPath data = new ShmPath(ring)) {
            awaitAttached(ring, peer);
            check.run(peer, data);
        } finally {
            if (peer.isAlive()) {
                peer.destroyForcibly().waitFor();
            }
        }
    }
}
