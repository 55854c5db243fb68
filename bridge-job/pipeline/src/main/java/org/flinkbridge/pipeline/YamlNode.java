package org.flinkbridge.pipeline;

import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;
import org.yaml.snakeyaml.nodes.Tag;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A node of a composed YAML document together with its path from the root (such as
 * {@code sources.events.count}), so that every typed read can fail with a message that names the place.
 */
final class YamlNode {

    private static final Pattern SIMPLE_KEY = Pattern.compile("[A-Za-z0-9_-]+");
    private static final int MAX_QUOTED = 60;

    private final Document doc;
    private final String path;
    private final Node node;

    private YamlNode(Document doc, String path, Node node) {
        this.doc = doc;
        this.path = path;
        this.node = node;
    }

    /** The state shared by the nodes of one file: its name for messages and the scalar constructor. */
    static final class Document {

        private final String file;
        private final ScalarConstructor scalars = new ScalarConstructor();

        Document(String file) {
            this.file = file;
        }

        YamlNode root(Node node) {
            return new YamlNode(this, "", node);
        }

        /** The one-line message format of every located error; line and column count from 1. */
        PipelineException error(String path, int line, int column, String expected, String found) {
            return new PipelineException(file + ": " + (path.isEmpty() ? "document" : path) + " (line " + line
                    + ", column " + column + "): expected " + expected + " but found " + found);
        }
    }

    // Reuses snakeyaml's YAML 1.1 rules for the scalars the composer tagged int, float or bool
    // (1_000, 0x1f, .inf, yes/no) instead of parsing them a second way.
    private static final class ScalarConstructor extends SafeConstructor {

        ScalarConstructor() {
            super(new LoaderOptions());
        }

        Object construct(ScalarNode node) {
            return constructObject(node);
        }
    }

    String path() {
        return path;
    }

    Node node() {
        return node;
    }

    /** A node at {@code path.key}; keys that are not plain words are quoted: {@code sources["my source"]}. */
    YamlNode child(String key, Node child) {
        String step = SIMPLE_KEY.matcher(key).matches()
                ? (path.isEmpty() ? key : path + "." + key)
                : path + "[" + quote(key) + "]";
        return new YamlNode(doc, step, child);
    }

    /** Another node reported at this node's path, such as a map key that cannot be one. */
    YamlNode samePath(Node other) {
        return new YamlNode(doc, path, other);
    }

    boolean isNull() {
        return node instanceof ScalarNode scalar && scalar.getTag().equals(Tag.NULL);
    }

    /** Any non-empty scalar, as written: {@code path: 2024} is the string "2024". */
    String string() {
        if (node instanceof ScalarNode scalar && !isNull() && !scalar.getValue().isBlank()) {
            return scalar.getValue();
        }
        throw error("a non-empty string");
    }

    /** A string that must be one of {@code allowed}. */
    String oneOf(Collection<String> allowed) {
        if (node instanceof ScalarNode scalar && !isNull() && allowed.contains(scalar.getValue())) {
            return scalar.getValue();
        }
        throw error("one of " + String.join(", ", allowed));
    }

    /** One of an enum's lower-case names. */
    <E extends Enum<E>> E choice(Class<E> type) {
        Optional<E> found = node instanceof ScalarNode scalar && !isNull()
                ? ConfigNames.find(type, scalar.getValue())
                : Optional.empty();
        return found.orElseThrow(() -> error("one of " + ConfigNames.choices(type)));
    }

    /** An integer in {@code [min, max]}, written as YAML 1.1 allows (100000, 100_000, 0x186a0). */
    long integer(long min, long max) {
        if (constructed(Tag.INT) instanceof Number number
                && !(number instanceof BigInteger big && big.bitLength() >= Long.SIZE)
                && number.longValue() >= min && number.longValue() <= max) {
            return number.longValue();
        }
        throw error(integerExpectation(min, max));
    }

    int integer(int min) {
        return (int) integer(min, Integer.MAX_VALUE);
    }

    private static String integerExpectation(long min, long max) {
        if (max != Long.MAX_VALUE) {
            return "an integer from " + min + " to " + max;
        }
        if (min == Long.MIN_VALUE) {
            return "an integer";
        }
        return min == 0 ? "a non-negative integer" : "an integer >= " + min;
    }

    boolean bool() {
        if (constructed(Tag.BOOL) instanceof Boolean value) {
            return value;
        }
        throw error("true or false");
    }

    YamlMap map() {
        return map("a mapping");
    }

    YamlMap map(String expected) {
        if (node instanceof MappingNode mapping) {
            return new YamlMap(this, mapping);
        }
        throw error(expected);
    }

    List<YamlNode> list(String expected) {
        if (!(node instanceof SequenceNode sequence)) {
            throw error(expected);
        }
        List<YamlNode> items = new ArrayList<>();
        for (Node item : sequence.getValue()) {
            items.add(new YamlNode(doc, path + "[" + items.size() + "]", item));
        }
        return items;
    }

    /** A non-empty string, or a non-empty list of them (as sentry_streams writes bootstrap_servers). */
    List<String> strings(String expected) {
        if (!(node instanceof SequenceNode)) {
            if (node instanceof ScalarNode scalar && !isNull() && !scalar.getValue().isBlank()) {
                return List.of(scalar.getValue());
            }
            throw error(expected);
        }
        List<YamlNode> items = list(expected);
        if (items.isEmpty()) {
            throw error(expected, "an empty list");
        }
        return items.stream().map(YamlNode::string).toList();
    }

    /**
     * At most this many values (mappings, lists and scalars) in one step's config once its aliases are
     * expanded: a few hundred bytes of aliases nested in aliases expand to billions of values, which would
     * exhaust the heap while the job is built.
     */
    static final int MAX_CONFIG_VALUES = 100_000;

    /** The state of one conversion to plain values: the nodes around the current one, and the values so far. */
    static final class Expansion {
        /** The nodes being converted around the current one, by identity. */
        final Set<Node> enclosing = Collections.newSetFromMap(new IdentityHashMap<>());
        private int values;
    }

    /** The node as plain JSON-like Java values (step config): maps, lists, strings, numbers, booleans, null. */
    Object plain(Expansion expansion) {
        if (!expansion.enclosing.add(node)) {
            // An alias to an enclosing node (a: &x [*x]) has no finite JSON form.
            throw error("a value that does not contain itself", "an alias to an enclosing node");
        }
        if (++expansion.values > MAX_CONFIG_VALUES) {
            throw error("at most " + MAX_CONFIG_VALUES + " values in a step's config once its aliases are expanded",
                    "more (aliases nested in aliases)");
        }
        try {
            return switch (node) {
                case MappingNode ignored -> map().plain(expansion);
                case SequenceNode ignored -> {
                    List<Object> items = new ArrayList<>();
                    for (YamlNode item : list("a list")) {
                        items.add(item.plain(expansion));
                    }
                    yield items;
                }
                case ScalarNode scalar -> plainScalar(scalar);
                default -> throw error("a mapping, a list or a scalar");
            };
        } finally {
            expansion.enclosing.remove(node);
        }
    }

    private Object plainScalar(ScalarNode scalar) {
        Tag tag = scalar.getTag();
        if (tag.equals(Tag.NULL)) {
            return null;
        }
        if (tag.equals(Tag.INT) || tag.equals(Tag.FLOAT)) {
            if (!(constructed(tag) instanceof Number number)) {
                throw error("a number");
            }
            if (number instanceof Double value) {
                if (!Double.isFinite(value)) {
                    throw error("a finite number (JSON has no infinity or NaN)");
                }
                return value;
            }
            return number instanceof BigInteger big && big.bitLength() >= Long.SIZE ? big : number.longValue();
        }
        if (tag.equals(Tag.BOOL)) {
            return constructed(Tag.BOOL);
        }
        // Strings, timestamps and custom tags: the text as written.
        return scalar.getValue();
    }

    /** The scalar's value if the composer gave it {@code tag} and snakeyaml can construct it, else null. */
    private Object constructed(Tag tag) {
        if (!(node instanceof ScalarNode scalar) || !scalar.getTag().equals(tag)) {
            return null;
        }
        try {
            return doc.scalars.construct(scalar);
        } catch (NumberFormatException e) {
            return null; // the float pattern admits "._", which is no number
        }
    }

    PipelineException error(String expected) {
        return error(expected, describe(node));
    }

    PipelineException error(String expected, String found) {
        return errorAt(node.getStartMark(), expected, found);
    }

    PipelineException errorAt(Mark mark, String expected, String found) {
        return doc.error(path, mark.getLine() + 1, mark.getColumn() + 1, expected, found);
    }

    /** What a node is, for "but found ...". */
    static String describe(Node node) {
        return switch (node) {
            case MappingNode mapping -> mapping.getValue().isEmpty() ? "an empty mapping" : "a mapping";
            case SequenceNode sequence -> sequence.getValue().isEmpty() ? "an empty list" : "a list";
            case ScalarNode scalar when scalar.getTag().equals(Tag.NULL) ->
                    scalar.getValue().isEmpty() ? "an empty value" : "null";
            case ScalarNode scalar when scalar.getTag().equals(Tag.STR) -> "the string " + quote(scalar.getValue());
            case ScalarNode scalar -> abbreviate(scalar.getValue());
            default -> node.getNodeId().toString();
        };
    }

    /** A value in single quotes, on one line and cut short, for messages. */
    static String quote(String value) {
        return "'" + abbreviate(value) + "'";
    }

    private static String abbreviate(String value) {
        StringBuilder out = new StringBuilder();
        value.codePoints().limit(MAX_QUOTED).forEach(c -> {
            switch (c) {
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (Character.isISOControl(c)) {
                        out.append(String.format("\\u%04x", c));
                    } else {
                        out.appendCodePoint(c);
                    }
                }
            }
        });
        return value.codePointCount(0, value.length()) > MAX_QUOTED ? out + "..." : out.toString();
    }
}
