package org.flinkbridge.bridge.session;

import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingFiles;
import org.flinkbridge.transport.shm.RingLayout;
import org.flinkbridge.protocol.WorkerLostException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The shm data plane against a worker that attached its ring and keeps its heartbeat, but never reads. */
class ShmChannelTest {

    private static final long WORKER_TIMEOUT_MILLIS = 500;
    private static final String SESSION = "session s-1 (segment 0 'main' subtask 0/1, worker at test)";
    private static final WorkerChannel.Answers NO_ANSWERS = new WorkerChannel.Answers() {
        @Override
        public void output(long sequence, BridgeRecord output) {
            throw new AssertionError("no output was asked for");
        }

        @Override
        public void endOfOutputs(long sequence) {
            throw new AssertionError("no answer was asked for");
        }

        @Override
        public void error(long sequence, String message) {
            throw new AssertionError("no answer was asked for");
        }

        @Override
        public void inputFailed(long sequence, InputFailures.Failure failure) {
            throw new AssertionError("no answer was asked for");
        }
    };

    /** Records, the end-of-input watermark and checkpoint barriers all wait for room the same bounded way. */
    @ParameterizedTest
    @ValueSource(strings = {"RECORD", "WATERMARK", "BARRIER"})
    void aFullRingWhoseWorkerHangsFailsTheSessionAfterTheWorkerTimeout(String input, @TempDir Path dir)
            throws Exception {
        try (RingFile bridge = RingFile.create(dir.resolve("s" + RingFiles.SUFFIX), RingLayout.MIN_CAPACITY,
                RingLayout.MIN_CAPACITY, "00112233445566778899aabbccddeeff");
             RingFile hungWorker = RingFile.attach(bridge.path(), "00112233445566778899aabbccddeeff")) {
            ShmChannel channel = new ShmChannel(bridge, SESSION, 60_000, WORKER_TIMEOUT_MILLIS,
                    () -> null);
            BridgeRecord record = new BridgeRecord(new byte[512], Map.of(), 0L);

            IOException error = assertTimeoutPreemptively(Duration.ofSeconds(30), () -> assertThrows(
                    IOException.class, () -> {
                        for (long sequence = 0; ; sequence++) {
                            switch (input) {
                                case "RECORD" -> channel.sendRecord(sequence, KeyGroups.NONE, null, record,
                                        NO_ANSWERS);
                                case "WATERMARK" -> channel.sendWatermark(sequence, Long.MAX_VALUE, NO_ANSWERS);
                                default -> channel.sendBarrier(sequence, sequence, NO_ANSWERS);
                            }
                        }
                    }));

            assertTrue(error.getMessage().startsWith(SESSION + ": no room for " + input + " #"), error.getMessage());
            assertTrue(error.getMessage().contains("no answer from the worker for 500 ms (worker_timeout_ms)"),
                    error.getMessage());
            assertTrue(hungWorker.peerLost(60_000) == null, "the worker's heartbeat must still be going");
        }
    }

    /**
     * A worker that exits while the task thread has nothing to wait for (a sparse stream between barriers) is noticed
     * by the answers' watcher, which wakes the task thread; its next poll names the loss.
     */
    @Test
    void aWorkerThatExitsWhileNobodyWaitsWakesTheTaskThreadWhosePollNamesTheLoss(@TempDir Path dir)
            throws Exception {
        try (RingFile bridge = RingFile.create(dir.resolve("s" + RingFiles.SUFFIX), RingLayout.MIN_CAPACITY,
                RingLayout.MIN_CAPACITY, "00112233445566778899aabbccddeeff");
             RingFile worker = RingFile.attach(bridge.path(), "00112233445566778899aabbccddeeff")) {
            AtomicReference<String> exit = new AtomicReference<>();
            ShmChannel channel = new ShmChannel(bridge, SESSION, 60_000, WORKER_TIMEOUT_MILLIS, exit::get);
            CountDownLatch wokenUp = new CountDownLatch(1);
            channel.onAnswersWaiting(wokenUp::countDown);
            try {
                channel.sendRecord(0, KeyGroups.NONE, null, new BridgeRecord(new byte[8], Map.of(), 0L), NO_ANSWERS);
                channel.flush();
                assertFalse(channel.poll(NO_ANSWERS, 0));

                exit.set("it exited with status 137");

                assertTrue(wokenUp.await(30, TimeUnit.SECONDS), "the task thread was not woken up");
                WorkerLostException lost = assertThrows(WorkerLostException.class, () -> channel.poll(NO_ANSWERS, 0));
                assertEquals(SESSION + ": the worker is gone: it exited with status 137", lost.getMessage());
            } finally {
                channel.close();
            }
        }
    }
}
