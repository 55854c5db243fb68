package org.flinkbridge.pipeline;

import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.Node;

import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Reads a pipeline file (format: docs/pipeline-format.md) into a {@link Pipeline}.
 *
 * <p>The file is composed into a YAML node tree rather than loaded into maps, so that every error can
 * name its place: {@code <file>: sources.events.count (line 5, column 12): expected a non-negative integer
 * but found -5}. Relative paths of sources and sinks are resolved against the current working directory.
 */
public final class PipelineParser {

    private static final List<String> TOP_LEVEL_KEYS =
            List.of("name", "sources", "steps", "sinks", "branches", "segments", "bridge", "dead_letters");
    private static final List<String> SOURCE_TYPES =
            List.of(GeneratorSourceSpec.TYPE, FileSourceSpec.TYPE, KafkaSourceSpec.TYPE);
    private static final List<String> GENERATOR_KEYS = List.of("type", "count", "rate", "keys", "seed");
    private static final List<String> FILE_SOURCE_KEYS = List.of("type", "path", "monitor_interval_ms");
    private static final List<String> KAFKA_KEYS = List.of("type", "bootstrap_servers", "topic", "group_id",
            "starting_offsets", "bounded", "properties");
    private static final List<String> SINK_TYPES = List.of(FileSinkSpec.TYPE, PrintSinkSpec.TYPE, KafkaSinkSpec.TYPE);
    private static final List<String> FILE_SINK_KEYS = List.of("type", "path");
    private static final List<String> PRINT_SINK_KEYS = List.of("type");
    private static final List<String> KAFKA_SINK_KEYS = List.of("type", "bootstrap_servers", "topic", "delivery",
            "transactional_id_prefix", "properties", "key");
    /** The Kafka source's reserved consumer properties, each with why: "must be set with group_id". */
    private static final Map<String, String> RESERVED_CONSUMER_PROPERTIES = KafkaSourceSpec.RESERVED_PROPERTIES
            .entrySet().stream().collect(Collectors.toMap(Map.Entry::getKey, e -> "must be set with " + e.getValue(),
                    (a, b) -> a, TreeMap::new));
    /** A source or sink as the sentry_streams Flink adapter writes it: a Kafka topic without a type. */
    private static final List<String> STREAM_KEYS = List.of("bootstrap_servers", "stream_name", "starts_segment");
    private static final String SERVERS = "host:port pairs, comma-separated or as a list";
    private static final String STREAM_FORM = " (or, as sentry_streams writes a Kafka topic, stream_name and"
            + " bootstrap_servers without a type)";
    private static final List<String> STEP_KEYS = List.of("step_name", "type", "segment", "config", "on_error");
    private static final List<String> ROUTE_STEP_KEYS = List.of("step_name", "route");
    private static final List<String> BROADCAST_STEP_KEYS = List.of("step_name", "broadcast");
    private static final List<String> ROUTE_KEYS = List.of("by", "branches", "default");
    private static final List<String> BRANCH_KEYS = List.of("steps", "sinks", "to");
    private static final List<String> SEGMENT_KEYS = List.of("key");
    private static final List<String> BRIDGE_KEYS = List.of("transport", "grpc_mode", "worker_address", "key",
            "parallelism", "max_in_flight", "worker_timeout_ms", "checkpoint_interval_ms", "accept_at_least_once",
            "worker", "worker_recovery", "worker_restart_timeout_ms");
    private static final List<String> KEY_KINDS = Arrays.stream(KeyKind.values()).map(KeyKind::configName).toList();
    private static final String STEP_TYPES = "a built-in step type (" + String.join(", ", StepSpec.BUILT_IN_TYPES)
            + ") or a fully qualified class name";
    /** A URI scheme such as {@code hdfs:} or {@code file:}; one letter would be a Windows drive. */
    private static final Pattern URI_SCHEME = Pattern.compile("^[A-Za-z][A-Za-z0-9+.-]+:");

    private PipelineParser() {
    }

    /**
     * Parses one pipeline file.
     *
     * @throws PipelineException if the file cannot be read or is not a valid pipeline; the message is one line
     */
    public static Pipeline parse(Path file) {
        String where = file.toString();
        String text = read(file, where);
        YamlNode.Document doc = new YamlNode.Document(where);
        try {
            Node root = compose(text);
            if (root == null) {
                throw doc.error("", 1, 1, "a mapping with sources, steps and sinks", "an empty document");
            }
            return pipeline(file, doc.root(root));
        } catch (PipelineException e) {
            throw e;
        } catch (MarkedYAMLException e) {
            throw syntaxError(where, e);
        } catch (YAMLException e) {
            // Without the cause: a snakeyaml stack trace tells the user nothing the message does not.
            throw new PipelineException(where + ": cannot parse the pipeline file: " + oneLine(e.getMessage()));
        } catch (IllegalArgumentException e) {
            // A rule the model itself holds to (one that spans sections), worded for the file's author.
            throw new PipelineException(where + ": " + oneLine(e.getMessage()), e);
        } catch (RuntimeException e) {
            throw new PipelineException(where + ": cannot parse the pipeline file: " + oneLine(e.toString()), e);
        }
    }

    private static String read(Path file, String where) {
        try {
            if (Files.isDirectory(file)) {
                throw new PipelineException(where + ": cannot read the pipeline file: it is a directory");
            }
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new PipelineException(where + ": cannot read the pipeline file: no such file");
        } catch (AccessDeniedException e) {
            throw new PipelineException(where + ": cannot read the pipeline file: permission denied");
        } catch (CharacterCodingException e) {
            throw new PipelineException(where + ": cannot read the pipeline file: it is not UTF-8 text");
        } catch (IOException e) {
            throw new PipelineException(where + ": cannot read the pipeline file: " + oneLine(e.toString()), e);
        }
    }

    private static Node compose(String text) {
        LoaderOptions options = new LoaderOptions();
        // Resolve "<<: *anchor" merges in the node tree, which is all the parser looks at.
        options.setMergeOnCompose(true);
        return new Yaml(options).compose(new StringReader(text));
    }

    private static PipelineException syntaxError(String where, MarkedYAMLException e) {
        Mark mark = e.getProblemMark() != null ? e.getProblemMark() : e.getContextMark();
        StringBuilder message = new StringBuilder(where).append(": YAML syntax");
        if (mark != null) {
            message.append(" (line ").append(mark.getLine() + 1).append(", column ").append(mark.getColumn() + 1)
                    .append(')');
        }
        message.append(": ").append(e.getProblem());
        if (e.getContext() != null) {
            Mark context = e.getContextMark();
            message.append(" (").append(e.getContext());
            if (context != null && context != mark) {
                message.append(" at line ").append(context.getLine() + 1).append(", column ")
                        .append(context.getColumn() + 1);
            }
            message.append(')');
        }
        return new PipelineException(oneLine(message.toString()));
    }

    private static String oneLine(String text) {
        return String.valueOf(text).strip().replaceAll("\\s*\\R\\s*", " ");
    }

    private static Pipeline pipeline(Path file, YamlNode rootNode) {
        YamlMap root = rootNode.map("a mapping with sources, steps and sinks").allowOnly(TOP_LEVEL_KEYS);
        String name = root.optional("name").map(YamlNode::string).orElseGet(() -> baseName(file));
        List<SourceSpec> sources = sources(root.required("sources", "a mapping of sources"), name);
        // Before the sinks, which may need checkpointing on.
        BridgeSettings bridge = root.optional("bridge").map(PipelineParser::bridge)
                .orElseGet(BridgeSettings::defaults);
        Map<String, YamlMap.Field> segmentKeys = root.optional("segments")
                .map(node -> node.map("a mapping of segment names to {key: ...}").fields()).orElseGet(List::of)
                .stream().collect(Collectors.toMap(YamlMap.Field::name, field -> field, (a, b) -> a, LinkedHashMap::new));
        Flows flows = new Flows(root.optional("dead_letters").isPresent(), name, bridge, segmentKeys);
        Flow main = flows.main(root);
        Map<String, Flow> branches = root.optional("branches").map(flows::branches).orElseGet(Map::of);
        flows.check(main, branches);
        flows.requireKeyedSegmentsExist();
        SinkSpec deadLetters = root.optional("dead_letters")
                .map(node -> sink("dead_letters", node.map("a sink mapping"), name, bridge)).orElse(null);
        return new Pipeline(name, file, sources, main, branches, bridge, deadLetters);
    }

    /** The file name without its last extension: {@code example} for {@code docs/examples/example.yaml}. */
    private static String baseName(Path file) {
        String fileName = String.valueOf(file.getFileName());
        int dot = fileName.lastIndexOf('.');
        return dot > 0 ? fileName.substring(0, dot) : fileName;
    }

    private static List<SourceSpec> sources(YamlNode node, String pipelineName) {
        List<SourceSpec> sources = new ArrayList<>();
        for (YamlMap.Field entry : node.map("a mapping of sources").nonEmpty("at least one source").fields()) {
            YamlMap source = entry.value().map();
            if (isStream(source)) {
                YamlMap stream = stream(source);
                sources.add(new KafkaSourceSpec(entry.name(), servers(stream), stream.required("stream_name", "a topic name")
                        .string(), KafkaSourceSpec.defaultGroupId(pipelineName),
                        KafkaSourceSpec.DEFAULT_STARTING_OFFSETS, false, Map.of()));
                continue;
            }
            String type = source.required("type", "one of " + String.join(", ", SOURCE_TYPES) + STREAM_FORM)
                    .oneOf(SOURCE_TYPES);
            sources.add(switch (type) {
                case GeneratorSourceSpec.TYPE -> generator(entry.name(), source.allowOnly(GENERATOR_KEYS));
                case FileSourceSpec.TYPE -> fileSource(entry.name(), source.allowOnly(FILE_SOURCE_KEYS));
                case KafkaSourceSpec.TYPE -> kafka(entry.name(), source.allowOnly(KAFKA_KEYS), pipelineName);
                default -> throw new IllegalStateException("source type without a case: " + type);
            });
        }
        return sources;
    }

    private static GeneratorSourceSpec generator(String name, YamlMap source) {
        return new GeneratorSourceSpec(name,
                source.optional("count").map(v -> v.integer(0, Long.MAX_VALUE)).orElse(null),
                source.optional("rate").map(v -> v.integer(0, Long.MAX_VALUE)).orElse(GeneratorSourceSpec.DEFAULT_RATE),
                source.optional("keys").map(v -> v.integer(1)).orElse(GeneratorSourceSpec.DEFAULT_KEYS),
                source.optional("seed").map(v -> v.integer(Long.MIN_VALUE, Long.MAX_VALUE))
                        .orElse(GeneratorSourceSpec.DEFAULT_SEED));
    }

    private static FileSourceSpec fileSource(String name, YamlMap source) {
        return new FileSourceSpec(name,
                location(source.required("path", "a file or directory path")),
                source.optional("monitor_interval_ms").map(v -> v.integer(0, Long.MAX_VALUE))
                        .orElse(FileSourceSpec.DEFAULT_MONITOR_INTERVAL_MS));
    }

    private static KafkaSourceSpec kafka(String name, YamlMap source, String pipelineName) {
        return new KafkaSourceSpec(name,
                servers(source),
                source.required("topic", "a topic name").string(),
                source.optional("group_id").map(YamlNode::string)
                        .orElseGet(() -> KafkaSourceSpec.defaultGroupId(pipelineName)),
                source.optional("starting_offsets").map(v -> v.choice(StartingOffsets.class))
                        .orElse(KafkaSourceSpec.DEFAULT_STARTING_OFFSETS),
                source.optional("bounded").map(YamlNode::bool).orElse(false),
                source.optional("properties").map(v -> kafkaProperties(v, "consumer", RESERVED_CONSUMER_PROPERTIES))
                        .orElseGet(Map::of));
    }

    /** Whether a source or sink is a Kafka topic as sentry_streams writes it: no type, a stream_name. */
    private static boolean isStream(YamlMap endpoint) {
        return endpoint.optional("type").isEmpty() && endpoint.optional("stream_name").isPresent();
    }

    /** A sentry_streams topic's keys, checked; starts_segment is accepted and changes nothing here. */
    private static YamlMap stream(YamlMap endpoint) {
        endpoint.allowOnly(STREAM_KEYS).optional("starts_segment").ifPresent(YamlNode::bool);
        return endpoint;
    }

    private static String servers(YamlMap endpoint) {
        return String.join(",", endpoint.required("bootstrap_servers", SERVERS).strings(SERVERS));
    }

    /**
     * The extra client properties of a Kafka source or sink; numbers and booleans are taken as written.
     *
     * @param client   {@code consumer} or {@code producer}, for messages
     * @param reserved the properties that cannot be given here, each with why: "must be set with group_id"
     */
    private static Map<String, String> kafkaProperties(YamlNode node, String client, Map<String, String> reserved) {
        Map<String, String> properties = new LinkedHashMap<>();
        for (YamlMap.Field property : node.map("a mapping of " + client + " properties").fields()) {
            String why = reserved.get(property.name());
            if (why != null) {
                throw property.key().error("a " + client + " property other than "
                                + String.join(", ", reserved.keySet()),
                        YamlNode.quote(property.name()) + ", which " + why);
            }
            properties.put(property.name(), property.value().string());
        }
        return properties;
    }

    /** A local path made absolute against the working directory; a URI with a scheme stays as written. */
    private static String location(YamlNode node) {
        String value = node.string();
        if (URI_SCHEME.matcher(value).lookingAt()) {
            return value;
        }
        try {
            return Path.of(value).toAbsolutePath().normalize().toString();
        } catch (InvalidPathException e) {
            throw node.error("a file path or URI");
        }
    }

    /**
     * Reads the flows of a file, main steps and branches, keeping what spans them: step names, segment names
     * and ids, sink names, and where each flow names a branch, so that graph faults are reported there.
     */
    private static final class Flows {

        private final boolean deadLettersNamed;
        private final String pipelineName;
        private final BridgeSettings bridge;
        private final Map<String, String> stepPathByName = new HashMap<>();
        private final Map<String, String> lastStepPathBySegment = new HashMap<>();
        private final Map<String, String> sinkPathByName = new HashMap<>();
        private int segmentCount;
        /** Per flow (by {@link Flow#describe()}): each branch it names, at the first place it names it. */
        private final Map<String, Map<String, YamlNode>> namedBranches = new HashMap<>();
        private final Map<String, YamlNode> branchKeys = new HashMap<>();
        /** The file's {@code segments} section: segment name → its entry, whose {@code key} keys the segment. */
        private final Map<String, YamlMap.Field> segmentKeys;

        /**
         * @param deadLettersNamed whether the file names a dead_letters sink, which on_error: dead_letter needs
         * @param segmentKeys      the entries of the file's {@code segments} section, by segment name
         */
        Flows(boolean deadLettersNamed, String pipelineName, BridgeSettings bridge,
              Map<String, YamlMap.Field> segmentKeys) {
            this.deadLettersNamed = deadLettersNamed;
            this.pipelineName = pipelineName;
            this.bridge = bridge;
            this.segmentKeys = segmentKeys;
        }

        /** A segment of the steps read, with its own key when the {@code segments} section gives one. */
        private SegmentSpec segment(String name, List<StepSpec> steps) {
            YamlMap.Field entry = segmentKeys.get(name);
            KeySpec key = entry == null ? null
                    : key(entry.value().map("a mapping with key").allowOnly(SEGMENT_KEYS).required("key",
                            "the segment's key: a mapping with one of " + String.join(", ", KEY_KINDS)));
            return new SegmentSpec(segmentCount++, name, steps, key);
        }

        /** Every segment the {@code segments} section names is one of the file's. */
        void requireKeyedSegmentsExist() {
            for (YamlMap.Field entry : segmentKeys.values()) {
                if (!lastStepPathBySegment.containsKey(entry.name())) {
                    throw entry.key().error("the name of a segment of the steps ("
                            + String.join(", ", new TreeSet<>(lastStepPathBySegment.keySet())) + ")",
                            "the segment " + YamlNode.quote(entry.name()) + ", which no step belongs to");
                }
            }
        }

        /** The steps of a flow, and the route or broadcast that ends them, if one does. */
        private record Steps(List<SegmentSpec> segments, FlowEnd end, Map<String, YamlNode> branches) {
            static final Steps NONE = new Steps(List.of(), null, Map.of());
        }

        Flow main(YamlMap root) {
            Steps steps = steps(root.required("steps", "a list of steps"), SegmentSpec.DEFAULT_NAME);
            Optional<YamlNode> sinksNode = root.optional("sinks");
            FlowEnd end;
            if (steps.end() != null) {
                if (sinksNode.isPresent()) {
                    throw sinksNode.get().error("no sinks here, where the main steps end in " + describe(steps.end())
                            + ", which sends every record to its branches: give each branch its sinks", "sinks");
                }
                end = steps.end();
            } else {
                end = new FlowEnd.Sinks(sinks(root.required("sinks", "a mapping of sinks")));
            }
            return flow(null, steps, end);
        }

        Map<String, Flow> branches(YamlNode node) {
            Map<String, Flow> branches = new LinkedHashMap<>();
            for (YamlMap.Field entry : node.map("a mapping of branches").nonEmpty("at least one branch").fields()) {
                String name = entry.name();
                branchKeys.put(name, entry.key());
                YamlMap branch = entry.value().map("a branch mapping with steps, sinks or to")
                        .allowOnly(BRANCH_KEYS);
                Steps steps = branch.optional("steps").map(v -> steps(v, name)).orElse(Steps.NONE);
                Optional<YamlNode> sinks = branch.optional("sinks");
                Optional<YamlNode> to = branch.optional("to");
                String ends = "one of sinks, to (a branch to go on into), or a route or broadcast as its last step";
                if (steps.end() == null && sinks.isEmpty() && to.isEmpty()) {
                    throw branch.node().error(ends, "a branch with none: its records would go nowhere");
                }
                if ((steps.end() != null ? 1 : 0) + (sinks.isPresent() ? 1 : 0) + (to.isPresent() ? 1 : 0) > 1) {
                    YamlNode second = to.orElseGet(sinks::orElseThrow);
                    throw second.error(ends, "more than one: "
                            + (steps.end() != null ? describe(steps.end()) : "sinks") + " and "
                            + (to.isPresent() ? "to" : "sinks"));
                }
                FlowEnd end;
                Map<String, YamlNode> named = steps.branches();
                if (steps.end() != null) {
                    end = steps.end();
                } else if (sinks.isPresent()) {
                    end = new FlowEnd.Sinks(sinks(sinks.get()));
                } else {
                    end = new FlowEnd.Join(to.get().string());
                    named = Map.of(to.get().string(), to.get());
                }
                branches.put(name, flow(name, new Steps(steps.segments(), end, named), end));
            }
            return branches;
        }

        /** Reports the graph's first fault at the key it is about: an unknown branch, a cycle, an unreached branch. */
        void check(Flow main, Map<String, Flow> branches) {
            GraphCheck.check(main, branches).ifPresent(fault -> {
                throw switch (fault.kind()) {
                    case UNKNOWN_BRANCH -> placeNaming(fault).error(branches.isEmpty()
                                    ? "a branch under a top-level branches mapping (the file has none)"
                                    : "one of the branches " + String.join(", ", branches.keySet()),
                            "the branch " + YamlNode.quote(fault.branch()));
                    case CYCLE -> placeNaming(fault).error("a branch that does not lead back here",
                            YamlNode.quote(fault.branch()) + ", and " + fault.message());
                    case UNREACHED -> branchKeys.get(fault.branch()).error("a branch that a route, broadcast or"
                            + " to names", "branch " + YamlNode.quote(fault.branch()) + ", which nothing sends records"
                            + " to");
                };
            });
        }

        private YamlNode placeNaming(GraphCheck.Fault fault) {
            return namedBranches.get(fault.from().describe()).get(fault.branch());
        }

        private Flow flow(String branch, Steps steps, FlowEnd end) {
            Flow flow = new Flow(branch, steps.segments(), end);
            namedBranches.put(flow.describe(), steps.branches());
            return flow;
        }

        private static String describe(FlowEnd end) {
            return switch (end) {
                case FlowEnd.Route route -> "route " + route.step();
                case FlowEnd.Broadcast broadcast -> "broadcast " + broadcast.step();
                case FlowEnd.Sinks ignored -> "sinks";
                case FlowEnd.Join join -> "to " + join.branch();
            };
        }

        private List<SinkSpec> sinks(YamlNode node) {
            List<SinkSpec> sinks = new ArrayList<>();
            for (YamlMap.Field entry : node.map("a mapping of sinks").nonEmpty("at least one sink").fields()) {
                String firstUse = sinkPathByName.putIfAbsent(entry.name(), entry.key().path());
                if (firstUse != null) {
                    throw entry.key().error("a sink name unique in the pipeline", YamlNode.quote(entry.name())
                            + ", which " + firstUse + " already uses");
                }
                sinks.add(sink(entry.name(), entry.value().map(), pipelineName, bridge));
            }
            return sinks;
        }

        /** @param defaultSegment the segment of steps that name none: main, or the branch's name */
        private Steps steps(YamlNode node, String defaultSegment) {
            List<YamlNode> items = node.list("a list of steps");
            if (items.isEmpty()) {
                throw node.error("at least one step");
            }
            List<SegmentSpec> segments = new ArrayList<>();
            FlowEnd end = null;
            Map<String, YamlNode> branches = new LinkedHashMap<>();
            String segmentName = null;
            List<StepSpec> segmentSteps = new ArrayList<>();
            for (YamlNode item : items) {
                if (end != null) {
                    throw item.error("no step after " + describe(end) + ", which ends its list of steps (its"
                            + " branches go on)", "another step");
                }
                YamlMap step = item.map("a step mapping with step_name and type");
                YamlNode nameNode = step.required("step_name", "a unique step name");
                String name = nameNode.string();
                String firstUse = stepPathByName.putIfAbsent(name, item.path());
                if (firstUse != null) {
                    throw nameNode.error("a unique step name", YamlNode.quote(name) + ", which " + firstUse
                            + " already uses");
                }
                if (step.optional("route").isPresent() || step.optional("broadcast").isPresent()) {
                    end = step.optional("route").isPresent()
                            ? route(name, step.allowOnly(ROUTE_STEP_KEYS), branches)
                            : broadcast(name, step.allowOnly(BROADCAST_STEP_KEYS), branches);
                    continue;
                }
                step.allowOnly(STEP_KEYS);
                Map<String, Object> config = step.optional("config")
                        .map(v -> v.map("a mapping (passed to the worker as JSON)").plain())
                        .orElseGet(Map::of);
                Optional<YamlNode> onErrorNode = step.optional("on_error");
                OnError onError = onErrorNode.map(v -> v.choice(OnError.class)).orElse(OnError.FAIL);
                if (onError == OnError.DEAD_LETTER && !deadLettersNamed) {
                    throw onErrorNode.get().error("on_error: fail, or a dead_letters sink at the top level of the"
                            + " file (where the records this step fails on go)", "dead_letter");
                }
                Optional<YamlNode> segmentNode = step.optional("segment");
                Optional<YamlNode> typeNode = step.optional("type");
                if (typeNode.isEmpty()) {
                    // As sentry_streams writes it: a whole segment of its own, which the worker serves by its id.
                    if (segmentNode.isPresent()) {
                        throw segmentNode.get().error("no segment key: a step without a type is a segment of its"
                                        + " own, served by the worker by its id",
                                YamlNode.quote(segmentNode.get().string()));
                    }
                    if (segmentName != null) {
                        segments.add(segment(segmentName, segmentSteps));
                        segmentSteps = new ArrayList<>();
                        segmentName = null;
                    }
                    segments.add(segment(name, List.of(new StepSpec(name, StepSpec.WORKER_SEGMENT, config, onError))));
                    lastStepPathBySegment.put(name, item.path());
                    continue;
                }
                String type = typeNode.get().string();
                if (!StepSpec.isKnownType(type)) {
                    throw typeNode.get().error(STEP_TYPES);
                }

                String segment = segmentNode.map(YamlNode::string).orElse(defaultSegment);
                if (!segment.equals(segmentName)) {
                    if (segmentName != null) {
                        segments.add(segment(segmentName, segmentSteps));
                        segmentSteps = new ArrayList<>();
                    }
                    String ended = lastStepPathBySegment.get(segment);
                    if (ended != null) {
                        // A segment runs in one worker session, so its steps must be consecutive.
                        YamlNode at = segmentNode.orElseGet(() -> item.child("segment", item.node()));
                        throw at.error((segmentName != null ? YamlNode.quote(segmentName) + " or " : "")
                                        + "a new segment name (a segment's steps must be consecutive)",
                                YamlNode.quote(segment) + (segmentNode.isEmpty() ? " (the default)" : "")
                                        + ", whose steps ended at " + ended);
                    }
                    segmentName = segment;
                }
                lastStepPathBySegment.put(segment, item.path());
                segmentSteps.add(new StepSpec(name, type, config, onError));
            }
            if (segmentName != null) {
                segments.add(segment(segmentName, segmentSteps));
            }
            return new Steps(segments, end, branches);
        }

        private static FlowEnd.Route route(String name, YamlMap step, Map<String, YamlNode> branches) {
            YamlMap route = step.required("route", "a mapping with by, branches and default")
                    .map("a mapping with by, branches and default").allowOnly(ROUTE_KEYS);
            KeySpec by = key(route.required("by", "what to route by: a mapping with one of "
                    + String.join(", ", KEY_KINDS)));
            Map<String, String> branchByValue = new LinkedHashMap<>();
            for (YamlMap.Field value : route.required("branches", "a mapping of value -> branch").map()
                    .nonEmpty("a mapping of value -> branch, at least one").fields()) {
                String branch = value.value().string();
                branchByValue.put(value.name(), branch);
                branches.putIfAbsent(branch, value.value());
            }
            YamlNode defaultNode = route.required("default", "the branch of the records whose value names no branch"
                    + " (and of those without the " + by.kind().configName() + ")");
            branches.putIfAbsent(defaultNode.string(), defaultNode);
            return new FlowEnd.Route(name, by, branchByValue, defaultNode.string());
        }

        private static FlowEnd.Broadcast broadcast(String name, YamlMap step, Map<String, YamlNode> branches) {
            String expected = "a list of two or more branch names";
            YamlNode node = step.required("broadcast", expected);
            List<YamlNode> items = node.list(expected);
            if (items.size() < 2) {
                throw node.error(expected);
            }
            List<String> targets = new ArrayList<>();
            for (YamlNode item : items) {
                String branch = item.string();
                if (branches.putIfAbsent(branch, item) != null) {
                    throw item.error("a branch not listed before", YamlNode.quote(branch) + " again");
                }
                targets.add(branch);
            }
            return new FlowEnd.Broadcast(name, targets);
        }
    }

    private static SinkSpec sink(String name, YamlMap sink, String pipelineName, BridgeSettings bridge) {
        if (isStream(sink)) {
            YamlMap stream = stream(sink);
            return new KafkaSinkSpec(name, servers(stream), stream.required("stream_name", "a topic name").string(),
                    KafkaSinkSpec.DEFAULT_DELIVERY, null, Map.of(), null);
        }
        String type = sink.required("type", "one of " + String.join(", ", SINK_TYPES) + STREAM_FORM)
                .oneOf(SINK_TYPES);
        return switch (type) {
            case FileSinkSpec.TYPE -> new FileSinkSpec(name,
                    location(sink.allowOnly(FILE_SINK_KEYS).required("path", "an output directory path")));
            case PrintSinkSpec.TYPE -> {
                sink.allowOnly(PRINT_SINK_KEYS);
                yield new PrintSinkSpec(name);
            }
            case KafkaSinkSpec.TYPE -> kafkaSink(name, sink.allowOnly(KAFKA_SINK_KEYS), pipelineName, bridge);
            default -> throw new IllegalStateException("sink type without a case: " + type);
        };
    }

    private static KafkaSinkSpec kafkaSink(String name, YamlMap sink, String pipelineName, BridgeSettings bridge) {
        Optional<YamlNode> deliveryNode = sink.optional("delivery");
        Delivery delivery = deliveryNode.map(v -> v.choice(Delivery.class)).orElse(KafkaSinkSpec.DEFAULT_DELIVERY);
        Optional<YamlNode> prefixNode = sink.optional("transactional_id_prefix");
        String prefix = null;
        if (delivery == Delivery.EXACTLY_ONCE) {
            if (bridge.checkpointIntervalMs() == 0) {
                throw deliveryNode.orElseThrow().error(Delivery.AT_LEAST_ONCE.configName() + ", or checkpointing on"
                        + " for " + delivery.configName() + " (it commits at checkpoints: set"
                        + " bridge.checkpoint_interval_ms)");
            }
            prefix = prefixNode.map(YamlNode::string)
                    .orElseGet(() -> KafkaSinkSpec.defaultTransactionalIdPrefix(pipelineName, name));
        } else if (prefixNode.isPresent()) {
            throw prefixNode.get().error("no transactional_id_prefix with " + delivery.configName() + " delivery"
                    + " (only " + Delivery.EXACTLY_ONCE.configName() + " uses transactions)");
        }
        return new KafkaSinkSpec(name,
                servers(sink),
                sink.required("topic", "a topic name").string(),
                delivery,
                prefix,
                sink.optional("properties")
                        .map(v -> kafkaProperties(v, "producer", KafkaSinkSpec.RESERVED_PROPERTIES))
                        .orElseGet(Map::of),
                sink.optional("key").map(PipelineParser::key).orElse(null));
    }

    private static BridgeSettings bridge(YamlNode node) {
        YamlMap bridge = node.map().allowOnly(BRIDGE_KEYS);
        return new BridgeSettings(
                transportMode(bridge),
                bridge.optional("worker_address").map(YamlNode::string).orElse(null),
                bridge.optional("key").map(PipelineParser::key).orElse(null),
                bridge.optional("parallelism").map(v -> v.integer(1)).orElse(BridgeSettings.DEFAULT_PARALLELISM),
                bridge.optional("max_in_flight").map(v -> v.integer(1))
                        .orElse(BridgeSettings.DEFAULT_MAX_IN_FLIGHT),
                bridge.optional("worker_timeout_ms").map(v -> v.integer(1, Long.MAX_VALUE))
                        .orElse(BridgeSettings.DEFAULT_WORKER_TIMEOUT_MS),
                bridge.optional("checkpoint_interval_ms").map(PipelineParser::checkpointInterval)
                        .orElse(BridgeSettings.DEFAULT_CHECKPOINT_INTERVAL_MS),
                bridge.optional("accept_at_least_once").map(YamlNode::bool).orElse(false),
                bridge.optional("worker").map(v -> v.choice(WorkerLanguage.class))
                        .orElse(BridgeSettings.DEFAULT_WORKER),
                bridge.optional("worker_recovery").map(v -> v.choice(WorkerRecovery.class))
                        .orElse(BridgeSettings.DEFAULT_WORKER_RECOVERY),
                bridge.optional("worker_restart_timeout_ms").map(v -> v.integer(1, Long.MAX_VALUE))
                        .orElse(BridgeSettings.DEFAULT_WORKER_RESTART_TIMEOUT_MS));
    }

    /** The one transport mode of {@code transport} and {@code grpc_mode}; compat over shm is refused. */
    private static TransportMode transportMode(YamlMap bridge) {
        Transport transport = bridge.optional("transport").map(v -> v.choice(Transport.class))
                .orElse(BridgeSettings.DEFAULT_TRANSPORT.transport());
        Optional<YamlNode> grpcModeNode = bridge.optional("grpc_mode");
        GrpcMode grpcMode = grpcModeNode.map(v -> v.choice(GrpcMode.class)).orElse(null);
        try {
            return TransportMode.of(transport, grpcMode);
        } catch (IllegalArgumentException refused) {
            throw grpcModeNode.orElseThrow().error(GrpcMode.STREAM.configName() + ", or transport "
                    + Transport.GRPC.configName() + " for " + GrpcMode.COMPAT.configName() + " (the prototype's unary"
                    + " gRPC service)");
        }
    }

    private static long checkpointInterval(YamlNode node) {
        long interval = node.integer(0, Long.MAX_VALUE);
        if (interval != 0 && interval < BridgeSettings.MIN_CHECKPOINT_INTERVAL_MS) {
            throw node.error("0 (off) or an interval of at least " + BridgeSettings.MIN_CHECKPOINT_INTERVAL_MS
                    + " ms (Flink's minimum)");
        }
        return interval;
    }

    private static KeySpec key(YamlNode node) {
        String expected = "a mapping with one of " + String.join(", ", KEY_KINDS);
        List<YamlMap.Field> fields = node.map(expected).allowOnly(KEY_KINDS).fields();
        if (fields.isEmpty()) {
            throw node.error(expected);
        }
        if (fields.size() > 1) {
            throw fields.get(1).key().error("only one of " + String.join(", ", KEY_KINDS),
                    "both " + fields.get(0).name() + " and " + fields.get(1).name());
        }
        YamlMap.Field field = fields.getFirst();
        return new KeySpec(KeyKind.parse(field.name()), field.value().string());
    }
}
