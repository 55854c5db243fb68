package org.flinkbridge.chaos;

import java.util.List;

/**
 * The sandbox load test's command line: {@code [--minutes N] [--rate R] [--transport shm|grpc]
 * [--worker java|python|rust] [--quick] [--saturate [--records N]]}. The quick run is 3 minutes at 2,000 records/s;
 * the default 10 minutes at 4,000. Both do the same faults. {@code --saturate} measures instead how fast the job
 * drains N records written beforehand (default 6,000,000, so that the drain outlasts the job's start-up; 200,000
 * with {@code --quick}), over shm and then gRPC.
 */
record SandboxOptions(String transport, String worker, int minutes, int recordsPerSecond, boolean saturate,
                      int saturationRecords) {

    static final String USAGE = "usage: ./flink-bridge sandbox load [--minutes N] [--rate R] [--transport shm|grpc]"
            + " [--worker java|python|rust] [--quick] [--saturate [--records N]]";

    static SandboxOptions parse(String[] args) {
        String transport = "shm";
        String worker = "java";
        Integer minutes = null;
        Integer rate = null;
        boolean quick = false;
        boolean saturate = false;
        Integer records = null;
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            String name = arg.contains("=") ? arg.substring(0, arg.indexOf('=')) : arg;
            if (name.equals("--quick") || name.equals("--saturate")) {
                quick |= name.equals("--quick");
                saturate |= name.equals("--saturate");
                continue;
            }
            String value;
            if (arg.contains("=")) {
                value = arg.substring(arg.indexOf('=') + 1);
            } else if (i + 1 < args.length) {
                value = args[++i];
            } else {
                throw new IllegalArgumentException(name + " needs a value; " + USAGE);
            }
            switch (name) {
                case "--transport" -> transport = OptionValues.oneOf(name, value, List.of("shm", "grpc"), USAGE);
                case "--worker" -> worker = OptionValues.oneOf(name, value, List.of("java", "python", "rust"), USAGE);
                case "--minutes" -> minutes = OptionValues.positive(name, value, USAGE);
                case "--rate" -> rate = OptionValues.positive(name, value, USAGE);
                case "--records" -> records = OptionValues.positive(name, value, USAGE);
                default -> throw new IllegalArgumentException("unknown argument '" + arg + "'; " + USAGE);
            }
        }
        if (records != null && !saturate) {
            throw new IllegalArgumentException("--records sets the input of a --saturate run; " + USAGE);
        }
        return new SandboxOptions(transport, worker, minutes != null ? minutes : quick ? 3 : 10,
                rate != null ? rate : quick ? 2_000 : 4_000, saturate,
                records != null ? records : quick ? 200_000 : 6_000_000);
    }

    long records() {
        return (long) minutes * 60 * recordsPerSecond;
    }
}
