package org.flinkbridge.bench;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The command line of a benchmark's main class: a fixed number of arguments, then an optional list of names, and the
 * {@code KEY=VALUE} lists some take.
 */
final class Arguments {

    private Arguments() {}

    /**
     * Exits with status 2 and {@code usage} unless {@code args} holds {@code fixed} arguments, or one more: a
     * comma-separated list of {@code what}, each one of {@code known}. Returns that list, or {@code known} without it.
     */
    static List<String> namesAfter(String[] args, int fixed, String usage, String what, List<String> known) {
        return namesAfter(args, fixed, 0, usage, what, known);
    }

    /**
     * As {@link #namesAfter(String[], int, String, String, List)}, and up to {@code more} further arguments may follow
     * the list (which is then required), for the caller to read.
     */
    static List<String> namesAfter(String[] args, int fixed, int more, String usage, String what,
                                   List<String> known) {
        if (args.length < fixed || args.length > fixed + 1 + more) {
            System.err.println("usage: " + usage);
            System.exit(2);
        }
        List<String> names = args.length > fixed ? List.of(args[fixed].split(",")) : known;
        if (!known.containsAll(names)) {
            System.err.println("flink-bridge bench: unknown " + what + " in " + names + "; the " + what + " are "
                    + known);
            System.exit(2);
        }
        return names;
    }

    /**
     * The {@code KEY=VALUE} pairs of a comma-separated list, in its order.
     *
     * @throws IllegalArgumentException naming the entry that is not {@code KEY=VALUE} or whose key came before
     */
    static Map<String, String> settings(String list) {
        Map<String, String> settings = new LinkedHashMap<>();
        for (String entry : list.split(",", -1)) {
            int equals = entry.indexOf('=');
            if (equals <= 0 || equals == entry.length() - 1) {
                throw new IllegalArgumentException("'" + entry + "' is not KEY=VALUE");
            }
            String key = entry.substring(0, equals).strip();
            if (settings.put(key, entry.substring(equals + 1).strip()) != null) {
                throw new IllegalArgumentException(key + " is given twice");
            }
        }
        return settings;
    }
}
