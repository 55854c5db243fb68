package org.flinkbridge.pipeline;

import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A YAML mapping with non-empty string keys, each present once, in the file's order. Merge keys
 * ({@code <<: *anchor}) are already resolved by the composer.
 */
final class YamlMap {

    /** One entry; {@code key} is the key node, reported at the entry's path. */
    record Field(String name, YamlNode key, YamlNode value) {
    }

    private final YamlNode self;
    private final Map<String, Field> fields = new LinkedHashMap<>();

    YamlMap(YamlNode self, MappingNode mapping) {
        this.self = self;
        for (NodeTuple tuple : mapping.getValue()) {
            Node keyNode = tuple.getKeyNode();
            YamlNode keyAt = self.samePath(keyNode);
            if (!(keyNode instanceof ScalarNode scalar) || keyAt.isNull() || scalar.getValue().isBlank()) {
                throw keyAt.error("a non-empty string as key");
            }
            String name = scalar.getValue();
            Field earlier = fields.get(name);
            if (earlier != null) {
                throw self.child(name, keyNode).error("each key once", "a second " + YamlNode.quote(name)
                        + " (the first is on line " + (earlier.key().node().getStartMark().getLine() + 1) + ")");
            }
            fields.put(name, new Field(name, self.child(name, keyNode), self.child(name, tuple.getValueNode())));
        }
    }

    YamlNode node() {
        return self;
    }

    List<Field> fields() {
        return List.copyOf(fields.values());
    }

    /** Fails unless the mapping has at least one entry. */
    YamlMap nonEmpty(String expected) {
        if (fields.isEmpty()) {
            throw self.error(expected);
        }
        return this;
    }

    /** Fails on the first key not in {@code allowed}, so that a typo is not silently ignored. */
    YamlMap allowOnly(Collection<String> allowed) {
        for (Field field : fields.values()) {
            if (!allowed.contains(field.name())) {
                throw field.key().error("one of the keys " + String.join(", ", allowed),
                        "the key " + YamlNode.quote(field.name()));
            }
        }
        return this;
    }

    /** The value of {@code key}, if present and not null. */
    Optional<YamlNode> optional(String key) {
        Field field = fields.get(key);
        return field == null || field.value().isNull() ? Optional.empty() : Optional.of(field.value());
    }

    /** The value of {@code key}; a missing key is reported at the mapping, a null value at the value. */
    YamlNode required(String key, String expected) {
        Field field = fields.get(key);
        if (field == null) {
            throw self.child(key, self.node()).error(expected, "no " + YamlNode.quote(key) + " key");
        }
        if (field.value().isNull()) {
            throw field.value().error(expected);
        }
        return field.value();
    }

    /** The mapping as plain JSON-like values (see {@link YamlNode#plain}), in the file's order. */
    Map<String, Object> plain() {
        YamlNode.Expansion expansion = new YamlNode.Expansion();
        expansion.enclosing.add(self.node());
        return plain(expansion);
    }

    Map<String, Object> plain(YamlNode.Expansion expansion) {
        Map<String, Object> values = new LinkedHashMap<>();
        for (Field field : fields.values()) {
            values.put(field.name(), field.value().plain(expansion));
        }
        return values;
    }
}
