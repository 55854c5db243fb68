package org.flinkbridge.pipeline;

import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;

/** The lower-case names by which the model's enums appear in pipeline files and on the command line. */
final class ConfigNames {

    private ConfigNames() {
    }

    static String of(Enum<?> value) {
        return value.name().toLowerCase(Locale.ROOT);
    }

    static <E extends Enum<E>> Optional<E> find(Class<E> type, String name) {
        return Arrays.stream(type.getEnumConstants()).filter(c -> of(c).equals(name)).findFirst();
    }

    /** The allowed names, for messages: {@code "shm, grpc"}. */
    static <E extends Enum<E>> String choices(Class<E> type) {
        return Arrays.stream(type.getEnumConstants()).map(ConfigNames::of).collect(Collectors.joining(", "));
    }

    static <E extends Enum<E>> E parse(Class<E> type, String name) {
        return find(type, name).orElseThrow(() -> new IllegalArgumentException(
                "expected one of " + choices(type) + " but found " + (name == null ? "null" : "'" + name + "'")));
    }
}
