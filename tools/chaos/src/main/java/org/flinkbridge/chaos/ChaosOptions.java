package org.flinkbridge.chaos;

import java.util.List;

/**
 * The chaos run's command line: {@code [--transport=shm|grpc] [--worker=java|python|rust]
 * [--recovery=in_place|failover] [--nondeterministic] [--dead-letters] [--timers] [--quick]
 * [--no-kills|--worker-kills-only] [--records=N]};
 * the recovery is the pipeline's {@code worker_recovery}. {@code --worker-kills-only} kills workers, never the TaskManager.
 * {@code --nondeterministic} (Python worker) counts with docs/examples/chaos/noisy_count.py,
 * whose outputs differ on every replay, so a recovery in place takes the failover path. {@code --dead-letters}
 * makes one input record in {@value #POISON_EVERY} not JSON, which the count (on_error: dead_letter) sends to an
 * exactly-once dead-letter topic, each to be there once. {@code --timers} runs the built-in {@code window} (a
 * per-key event-time timer per window) and a keyed {@code batch} (two timers per batch) instead of the count,
 * over {@value #TIMER_KEYS} keys instead of {@value #KEYS}, so that the full run sets well over 100,000 timers;
 * not with {@code --dead-letters} or {@code --nondeterministic}. The quick run is the
 * one the default test suite runs; the full one is longer, with more kills. {@code --no-kills} runs the same
 * job and input with nothing killed, which measures checkpoints under steady load. {@code --records=N} sends N
 * input records instead of the run's own number, at the same rate and with the same kills, spread over the longer
 * run.
 */
record ChaosOptions(String transport, String worker, String recovery, boolean nondeterministic, boolean deadLetters,
                    boolean timers, int keys, int records, int recordsPerSecond, int workerKills, int taskManagerKills,
                    long checkpointIntervalMillis, long settleSeconds) {

    /** With {@code --dead-letters}, one record in this many is not JSON. */
    static final int POISON_EVERY = 100;
    /** The keys the input is spread over. */
    static final int KEYS = 50;
    /**
     * The same with {@code --timers}: each key has a window a second, so 1,000 keys set 1,000 window timers and
     * about as many batches (two timers each) a second.
     */
    static final int TIMER_KEYS = 1_000;

    static final String USAGE =
            "usage: ./flink-bridge chaos [--transport=shm|grpc] [--worker=java|python|rust] [--recovery=in_place|failover]"
                    + " [--nondeterministic] [--dead-letters] [--timers] [--quick] [--no-kills|--worker-kills-only]"
                    + " [--records=N]";

    static ChaosOptions parse(String[] args) {
        String transport = "shm";
        String worker = "java";
        String recovery = "in_place";
        boolean quick = false;
        boolean kills = true;
        boolean taskManagerKills = true;
        boolean nondeterministic = false;
        boolean deadLetters = false;
        boolean timers = false;
        Integer records = null;
        for (String arg : args) {
            if (arg.equals("--quick")) {
                quick = true;
            } else if (arg.equals("--no-kills")) {
                kills = false;
            } else if (arg.equals("--worker-kills-only")) {
                taskManagerKills = false;
            } else if (arg.equals("--nondeterministic")) {
                nondeterministic = true;
            } else if (arg.equals("--dead-letters")) {
                deadLetters = true;
            } else if (arg.equals("--timers")) {
                timers = true;
            } else if (arg.startsWith("--records=")) {
                records = OptionValues.positive("--records", arg.substring("--records=".length()), USAGE);
            } else if (arg.startsWith("--transport=")) {
                transport = OptionValues.oneOf("--transport", arg.substring("--transport=".length()),
                        List.of("shm", "grpc"), USAGE);
            } else if (arg.startsWith("--worker=")) {
                worker = OptionValues.oneOf("--worker", arg.substring("--worker=".length()),
                        List.of("java", "python", "rust"), USAGE);
            } else if (arg.startsWith("--recovery=")) {
                recovery = OptionValues.oneOf("--recovery", arg.substring("--recovery=".length()),
                        List.of("in_place", "failover"), USAGE);
            } else {
                throw new IllegalArgumentException("unknown argument '" + arg + "'; " + USAGE);
            }
        }
        if (deadLetters && nondeterministic) {
            throw new IllegalArgumentException("--dead-letters counts with the built-in count: leave out "
                    + "--nondeterministic; " + USAGE);
        }
        if (timers && (deadLetters || nondeterministic)) {
            throw new IllegalArgumentException("--timers runs the built-in window and batch steps: leave out "
                    + (deadLetters ? "--dead-letters" : "--nondeterministic") + "; " + USAGE);
        }
        if (nondeterministic && !worker.equals("python")) {
            throw new IllegalArgumentException("--nondeterministic runs a Python segment: add --worker=python; "
                    + USAGE);
        }
        int keys = timers ? TIMER_KEYS : KEYS;
        return quick
                ? new ChaosOptions(transport, worker, recovery, nondeterministic, deadLetters, timers, keys,
                        records != null ? records : 40_000, 2_000, kills ? 3 : 0,
                        kills && taskManagerKills ? 1 : 0, 1_000, 120)
                : new ChaosOptions(transport, worker, recovery, nondeterministic, deadLetters, timers, keys,
                        records != null ? records : 300_000, 2_500, kills ? 8 : 0,
                        kills && taskManagerKills ? 2 : 0, 1_000, 300);
    }

    /** The input records that are not JSON: each a dead letter, and no count. */
    long poisoned() {
        return deadLetters ? records / POISON_EVERY : 0;
    }

    long produceMillis() {
        return records * 1000L / recordsPerSecond;
    }
}
