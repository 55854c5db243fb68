package org.flinkbridge.chaos;

import java.nio.file.Path;
import java.util.function.Function;

/**
 * How the chaos run and the sandbox load test start: their options are parsed (exit 2 naming what is wrong), then
 * the run goes in the project's home ({@code -Dflink-bridge.home}) and exits 0 only when it was clean.
 */
final class Runs {

    interface Run<O> {
        /** @return whether the run was clean */
        boolean run(O options, Path home) throws Exception;
    }

    private Runs() {}

    static <O> void main(String command, String[] args, Function<String[], O> parse, Run<O> run) throws Exception {
        O options;
        try {
            options = parse.apply(args);
        } catch (IllegalArgumentException e) {
            System.err.println("flink-bridge " + command + ": " + e.getMessage());
            System.exit(2);
            return;
        }
        Path home = Path.of(System.getProperty("flink-bridge.home", ".")).toAbsolutePath();
        System.exit(run.run(options, home) ? 0 : 1);
    }
}
