package org.flinkbridge.conformance;

import org.flinkbridge.conformance.WorkerUnderTest.KitTransport;
import org.flinkbridge.protocol.KeyGroups;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The stop rule (docs/protocol.md, "Stopping and upgrades"): a worker sent SIGTERM while it serves a session
 * answers every input it has read, in full, ends the session as stopped (the ring's closed flag CLOSED_STOPPED,
 * or its gRPC stream completed with OK), and exits. Each point starts a worker of its own, since it ends it.
 */
final class StopPoints {

    /** Inputs sent before the stop, more than a worker answers at once. */
    private static final int INPUTS = 300;
    /** How long the worker may take to answer what it read and end the session: "within seconds". */
    private static final long END_WITHIN_MILLIS = 15_000;
    private static final long EXIT_WITHIN_MILLIS = 10_000;

    private final List<String> command;
    private final Path ringDirectory;
    private final Report report;

    StopPoints(List<String> command, Path ringDirectory, Report report) {
        this.command = command;
        this.ringDirectory = ringDirectory;
        this.report = report;
    }

    void run(KitTransport transport) {
        report.check("stop: on SIGTERM the worker answers every input it read, ends the session as stopped and exits ("
                + transport.flag + ")", () -> {
            try (WorkerUnderTest worker = WorkerUnderTest.start(command, ringDirectory, false);
                 WorkerUnderTest.Session session = worker.openAnswered(transport)) {
                DataPath data = session.data();
                for (int i = 1; i <= INPUTS; i++) {
                    data.record(i, KeyGroups.NONE, ContractPoints.input(i));
                }
                worker.signal("TERM");
                long answered = 0;
                try {
                    // Past the last input sent: only the session's end stops this.
                    for (long next = 1; next <= INPUTS + 1; next++) {
                        data.answersThrough(next, END_WITHIN_MILLIS);
                        answered = next;
                    }
                    throw new Report.Broken("the session did not end within " + END_WITHIN_MILLIS + " ms of SIGTERM");
                } catch (DataPath.SessionEnded ended) {
                    Report.require(!data.partlyAnswered(), "input #" + (answered + 1) + " was answered in part when"
                            + " the session ended: a stopping worker answers what it read in full");
                    Report.require(data.endedAsStopped(), "after answering " + answered + " of " + INPUTS
                            + " inputs the session ended, but not as stopped: " + ended.getMessage());
                }
                Report.require(worker.awaitExit(EXIT_WITHIN_MILLIS, TimeUnit.MILLISECONDS), "the worker still runs "
                        + EXIT_WITHIN_MILLIS + " ms after its sessions ended");
            }
        });
    }
}
