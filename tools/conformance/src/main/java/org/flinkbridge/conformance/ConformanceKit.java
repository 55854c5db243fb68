package org.flinkbridge.conformance;

import org.flinkbridge.conformance.WorkerUnderTest.KitTransport;
import org.flinkbridge.transport.shm.RingFiles;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The worker protocol's conformance kit: starts a worker from its command line and drives it through every
 * contract point of docs/protocol.md over the wire, as a bridge does, printing one line per point and then
 * {@code conformance: N passed, M failed}. Exit status 0 when none failed, 1 when one did, 2 on bad usage.
 */
public final class ConformanceKit {

    static final String USAGE = "usage: ./flink-bridge conformance [--transport shm|grpc]... [--data-plane] "
            + "[--ring-dir DIR] [--verbose] -- WORKER COMMAND...\n"
            + "  a worker: started as a TaskManager spawns one (--parent-pid PID appended), it prints its listening "
            + "line and serves the control service and each --transport named (default: shm and grpc)\n"
            + "  --data-plane: a peer that serves one ring file, started as COMMAND RING_PATH TOKEN (shm only)\n"
            + "  --ring-dir: the ring directory the kit and the worker share (default "
            + RingFiles.defaultDirectory() + ")";

    private ConformanceKit() {}

    public static void main(String[] args) {
        int status;
        try {
            status = run(args, System.out);
        } catch (IllegalArgumentException e) {
            System.err.println("conformance: " + e.getMessage() + "\n" + USAGE);
            status = 2;
        }
        System.exit(status);
    }

    /** Runs the kit; returns the exit status. */
    static int run(String[] args, PrintStream out) {
        Set<KitTransport> transports = new LinkedHashSet<>();
        boolean dataPlane = false;
        boolean verbose = false;
        Path ringDirectory = RingFiles.defaultDirectory();
        List<String> command = null;
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.equals("--")) {
                command = List.of(args).subList(i + 1, args.length);
                break;
            }
            int equals = arg.indexOf('=');
            String name = equals > 0 ? arg.substring(0, equals) : arg;
            String value = null;
            if (name.equals("--transport") || name.equals("--ring-dir")) {
                if (equals > 0) {
                    value = arg.substring(equals + 1);
                } else if (++i < args.length) {
                    value = args[i];
                } else {
                    throw new IllegalArgumentException(name + " needs a value");
                }
            }
            switch (name) {
                case "--transport" -> transports.add(KitTransport.parse(value));
                case "--ring-dir" -> ringDirectory = Path.of(value);
                case "--data-plane" -> dataPlane = true;
                case "--verbose" -> verbose = true;
                default -> throw new IllegalArgumentException("unknown option '" + arg + "'");
            }
        }
        if (command == null || command.isEmpty()) {
            throw new IllegalArgumentException("no worker command after --");
        }
        if (transports.isEmpty()) {
            transports.addAll(dataPlane ? List.of(KitTransport.SHM) : List.of(KitTransport.values()));
        }
        Report report = new Report(out);
        if (dataPlane) {
            if (!transports.equals(Set.of(KitTransport.SHM))) {
                throw new IllegalArgumentException("a --data-plane peer serves a ring file: --transport shm only");
            }
            new RingPeerPoints(command, ringDirectory, verbose, report).run();
        } else {
            checkWorker(command, ringDirectory, verbose, new ArrayList<>(transports), report);
        }
        out.println(report.summary());
        return report.failed() == 0 ? 0 : 1;
    }

    private static void checkWorker(List<String> command, Path ringDirectory, boolean verbose,
                                    List<KitTransport> transports, Report report) {
        WorkerUnderTest worker;
        try {
            worker = WorkerUnderTest.start(command, ringDirectory, verbose);
        } catch (Exception e) {
            report.check("launch: the worker starts and prints its listening line", () -> {
                throw e;
            });
            return;
        }
        try (worker) {
            report.check("launch: the worker starts and prints its listening line", () -> {});
            ContractPoints points = new ContractPoints(worker, report);
            points.control(transports.contains(KitTransport.SHM));
            transports.forEach(points::transport);
            CellPoints cells = new CellPoints(worker, report);
            transports.forEach(cells::run);
            TimerPoints timers = new TimerPoints(worker, report);
            transports.forEach(timers::run);
            new BuiltInStepPoints(worker, report).run(transports.getFirst());
            report.check("lifetime: the worker is still running after every point", () -> Report.require(
                    worker.exited() == null, worker.exited() + "; its last output:\n" + worker.lastOutput()));
        }
        new SpawnerDeathPoints(command, ringDirectory, report).run(transports.getFirst());
        StopPoints stops = new StopPoints(command, ringDirectory, report);
        transports.forEach(stops::run);
    }
}
