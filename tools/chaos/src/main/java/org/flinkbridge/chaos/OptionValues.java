package org.flinkbridge.chaos;

import java.util.List;

/**
 * The checks of an option's value that the chaos run's and the sandbox load test's command lines share: a refusal
 * names the option and what it takes, and ends with the command's usage.
 */
final class OptionValues {

    private OptionValues() {}

    /** {@code value}, which must be one of {@code allowed}. */
    static String oneOf(String name, String value, List<String> allowed, String usage) {
        if (!allowed.contains(value)) {
            String choices = String.join(", ", allowed.subList(0, allowed.size() - 1)) + " or "
                    + allowed.get(allowed.size() - 1);
            throw new IllegalArgumentException(name + " must be " + choices + ", not '" + value + "'; " + usage);
        }
        return value;
    }

    /** {@code value} as a whole number, which must be above 0. */
    static int positive(String name, String value, String usage) {
        try {
            int number = Integer.parseInt(value);
            if (number > 0) {
                return number;
            }
        } catch (NumberFormatException ignored) {
            // reported below with the text given
        }
        throw new IllegalArgumentException(name + " needs a whole number above 0, not '" + value + "'; " + usage);
    }
}
