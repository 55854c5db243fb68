package org.flinkbridge.bench;

import java.util.List;

/** The command line of a benchmark's main class: a fixed number of arguments, then an optional list of names. */
final class Arguments {

    private Arguments() {}

    /**
     * Exits with status 2 and {@code usage} unless {@code args} holds {@code fixed} arguments, or one more: a
     * comma-separated list of {@code what}, each one of {@code known}. Returns that list, or {@code known} without it.
     */
    static List<String> namesAfter(String[] args, int fixed, String usage, String what, List<String> known) {
        if (args.length != fixed && args.length != fixed + 1) {
            System.err.println("usage: " + usage);
            System.exit(2);
        }
        List<String> names = args.length == fixed + 1 ? List.of(args[fixed].split(",")) : known;
        if (!known.containsAll(names)) {
            System.err.println("flink-bridge bench: unknown " + what + " in " + names + "; the " + what + " are "
                    + known);
            System.exit(2);
        }
        return names;
    }
}
