package org.flinkbridge.bridge.function;

import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.functions.RuntimeContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram;
import org.flinkbridge.bridge.JobCounters;
import org.flinkbridge.protocol.BuiltInStep;
import org.flinkbridge.records.BridgeRecord;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntSupplier;
import java.util.function.LongSupplier;

/**
 * The Flink metrics of one bridge subtask's session, registered once when it opens (Flink's reporters and Web UI
 * show them per subtask): records and payload bytes each way, inputs in flight, each ring's occupancy, the
 * round trip of an input (sent until its last answer, every {@value #ROUND_TRIP_SAMPLING}th input timed so the
 * hot path stays cheap), the time the last checkpoint took to drain the session, and recoveries and upgrades.
 * Dead letters, late records, recoveries and upgrades also count in the job's {@link JobCounters} accumulators.
 */
final class SessionMetrics {

    /** One input in this many is timed for the round-trip histogram. */
    static final int ROUND_TRIP_SAMPLING = 16;
    /** Round trips the histogram's statistics cover: the latest ones. */
    private static final int ROUND_TRIP_WINDOW = 1024;

    private final Counter recordsSent;
    private final Counter bytesSent;
    private final Counter recordsReceived;
    private final Counter bytesReceived;
    private final Counter recoveries;
    private final Counter upgrades;
    private final Counter replayedInputs;
    private final LongCounter jobDeadLetters;
    private final LongCounter jobLateRecords;
    private final LongCounter jobRecoveries;
    private final LongCounter jobUpgrades;
    private final Histogram roundTripMicros;
    /** Dead letters by step, for the steps with on_error: dead_letter. */
    private final Map<String, Counter> deadLetters = new HashMap<>();
    /** Late records by step, for the segment's window steps. */
    private final Map<String, Counter> lateRecords = new HashMap<>();
    /** Send times of the sampled inputs in flight, by sequence; the slot of an input not timed is unused. */
    private final long[] sentNanos;
    private final int slotMask;
    private volatile long lastRecoveryMillis;
    private volatile long lastCheckpointDrainMillis;

    /**
     * @param accumulators  the operator's runtime context, for the job's accumulators
     * @param inFlight      the inputs sent and not yet answered
     * @param toWorkerRing  bytes queued for the worker in the ring (0 without one)
     * @param fromWorkerRing bytes queued for the bridge in the ring (0 without one)
     * @param deadLetterSteps the segment's steps with on_error: dead_letter
     * @param windowSteps    the segment's steps of type window
     */
    SessionMetrics(MetricGroup group, RuntimeContext accumulators, int maxInFlight, IntSupplier inFlight, LongSupplier toWorkerRing,
                   LongSupplier fromWorkerRing, List<String> deadLetterSteps, List<String> windowSteps) {
        recordsSent = group.counter("bridgeRecordsSent");
        bytesSent = group.counter("bridgeBytesSent");
        recordsReceived = group.counter("bridgeRecordsReceived");
        bytesReceived = group.counter("bridgeBytesReceived");
        recoveries = group.counter("bridgeWorkerRecoveries");
        upgrades = group.counter("bridgeWorkerUpgrades");
        replayedInputs = group.counter("bridgeReplayedInputs");
        jobDeadLetters = JobCounters.Count.DEAD_LETTERS.in(accumulators);
        jobLateRecords = JobCounters.Count.LATE_RECORDS.in(accumulators);
        jobRecoveries = JobCounters.Count.WORKER_RECOVERIES.in(accumulators);
        jobUpgrades = JobCounters.Count.WORKER_UPGRADES.in(accumulators);
        for (String step : deadLetterSteps) {
            deadLetters.put(step, group.addGroup("step", step).counter("bridgeDeadLetters"));
        }
        for (String step : windowSteps) {
            lateRecords.put(step, group.addGroup("step", step).counter("bridgeLateRecords"));
        }
        roundTripMicros = group.histogram("bridgeRoundTripMicros",
                new DescriptiveStatisticsHistogram(ROUND_TRIP_WINDOW));
        group.gauge("bridgeInputsInFlight", (Gauge<Integer>) inFlight::getAsInt);
        group.gauge("bridgeRingToWorkerBytes", (Gauge<Long>) toWorkerRing::getAsLong);
        group.gauge("bridgeRingFromWorkerBytes", (Gauge<Long>) fromWorkerRing::getAsLong);
        group.gauge("bridgeLastRecoveryMillis", (Gauge<Long>) () -> lastRecoveryMillis);
        group.gauge("bridgeCheckpointDrainMillis", (Gauge<Long>) () -> lastCheckpointDrainMillis);
        // A slot per sequence that can be in flight at once (sequences also number clocks and barriers).
        int slots = Integer.highestOneBit(Math.max(1, maxInFlight) * 2 - 1) * 2;
        sentNanos = new long[slots];
        slotMask = slots - 1;
    }

    /**
     * The keys whose cells the worker holds and their weight in bytes, read by a reporter's thread (a count taken
     * while the task changes it may be off by a key).
     */
    void watchResidentCells(MetricGroup group, IntSupplier keys, LongSupplier bytes) {
        group.gauge("bridgeResidentKeys", (Gauge<Integer>) keys::getAsInt);
        group.gauge("bridgeResidentCellBytes", (Gauge<Long>) bytes::getAsLong);
    }

    void recordSent(long sequence, int payloadBytes) {
        recordsSent.inc();
        bytesSent.inc(payloadBytes);
        if (sequence % ROUND_TRIP_SAMPLING == 0) {
            sentNanos[(int) (sequence & slotMask)] = System.nanoTime();
        }
    }

    /** Input {@code sequence} has every answer; a sampled record's round trip goes into the histogram. */
    void answered(long sequence) {
        if (sequence % ROUND_TRIP_SAMPLING == 0) {
            int slot = (int) (sequence & slotMask);
            long sent = sentNanos[slot];
            if (sent != 0) {
                roundTripMicros.update((System.nanoTime() - sent) / 1_000);
                sentNanos[slot] = 0;
            }
        }
    }

    void outputReceived(int payloadBytes) {
        recordsReceived.inc();
        bytesReceived.inc(payloadBytes);
    }

    /** A record that {@code step} failed on went to the dead letters. */
    void deadLetter(String step) {
        Counter counter = deadLetters.get(step);
        if (counter != null) {
            counter.inc();
        }
        jobDeadLetters.add(1L);
    }

    /**
     * Counts {@code output} if it is a late record that one of the segment's window steps passed on (the header
     * {@code late} naming it; a late record of an earlier segment's window, passed through, names no step here).
     */
    void outputEmitted(BridgeRecord output) {
        if (lateRecords.isEmpty()) {
            return;
        }
        Counter late = lateRecords.get(output.headers.get(BuiltInStep.LATE_HEADER));
        if (late != null) {
            late.inc();
            jobLateRecords.add(1L);
        }
    }

    void recovered(InPlaceRecovery.Recovery recovery) {
        if (recovery.upgrade()) {
            upgrades.inc();
            jobUpgrades.add(1L);
        } else {
            recoveries.inc();
            jobRecoveries.add(1L);
        }
        replayedInputs.inc(recovery.replayedInputs());
        lastRecoveryMillis = recovery.millis();
        // The inputs timed before the loss were answered by the lost worker or replayed: their times mean nothing.
        Arrays.fill(sentNanos, 0);
    }

    void checkpointDrained(long millis) {
        lastCheckpointDrainMillis = millis;
    }
}
