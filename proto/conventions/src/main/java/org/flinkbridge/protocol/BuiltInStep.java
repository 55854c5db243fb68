package org.flinkbridge.protocol;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The built-in step types every worker serves (docs/steps.md), named in pipeline files and in OpenSession's
 * step descriptions by their lower-case names.
 */
public enum BuiltInStep {
    APPEND_FIELD(true),
    BATCH(false),
    FILTER(true),
    COUNT(false),
    RUNNING_COUNT(false),
    WINDOW(false);

    /**
     * The header a {@code window} step puts on a late record it passes on (its value the step's name): the bridge
     * counts the outputs that carry it.
     */
    public static final String LATE_HEADER = "late";

    private final boolean keepsNoState;

    BuiltInStep(boolean keepsNoState) {
        this.keepsNoState = keepsNoState;
    }

    /** The step type as written: {@code append_field}. */
    public String typeName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Whether the step keeps nothing between records. */
    public boolean keepsNoState() {
        return keepsNoState;
    }

    public static Optional<BuiltInStep> find(String type) {
        return Arrays.stream(values()).filter(step -> step.typeName().equals(type)).findFirst();
    }

    /** Every type name, in declaration order. */
    public static List<String> typeNames() {
        return Arrays.stream(values()).map(BuiltInStep::typeName).toList();
    }
}
