package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.DataType;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * Passes run in order from one spec string.
 *
 * <p>Spec grammar: passes separated by commas, each a registered name followed by options, each
 * option introduced by a colon: {@code name[:key=value]*}. Whitespace around names, keys and values
 * is ignored; a value may be empty and may contain {@code =} (only the first one splits) but no
 * {@code ,} or {@code :}. Lists inside a value are separated by {@code |}. Examples:
 *
 * <pre>
 * cleanup,fuse-qkv,tome:ratio=0.5,channels-last,fp16
 * cleanup,fp16:io=fp16:keep=InstanceNormalization|LayerNormalization
 * static-shapes:batch=2:height=64:width=64,cleanup,tome:ratio=0.5
 * </pre>
 *
 * An unknown pass or option is an error that lists the valid ones ({@code static-shapes} takes any
 * option: its keys are the graph's dimension names, which it checks when it runs).
 */
public final class PassPipeline {

    /**
     * How to make a pass from its options; {@code options} lists every key it accepts, unless
     * {@code anyOption} is set (the pass checks its keys itself).
     */
    public record Factory(Set<String> options, boolean anyOption, Function<Map<String, String>, GraphPass> create) {
        public Factory(Set<String> options, Function<Map<String, String>, GraphPass> create) {
            this(options, false, create);
        }
    }

    /** Every pass a spec can name. To add a pass, add one line here. */
    private static final Map<String, Factory> REGISTRY = new LinkedHashMap<>();

    static {
        REGISTRY.put("static-shapes", new Factory(Set.of(), true, StaticShapesPass::fromOptions));
        REGISTRY.put("cleanup", new Factory(Set.of(), options -> new CleanupPass()));
        REGISTRY.put("fuse-qkv", new Factory(Set.of(), options -> new FuseQkvPass()));
        REGISTRY.put("tome", new Factory(TokenMergingPass.OPTIONS, TokenMergingPass::fromOptions));
        REGISTRY.put("fp16", new Factory(PrecisionPass.OPTIONS, options -> PrecisionPass.fromOptions(DataType.FLOAT16, options)));
        REGISTRY.put("bf16", new Factory(PrecisionPass.OPTIONS, options -> PrecisionPass.fromOptions(DataType.BFLOAT16, options)));
        REGISTRY.put("channels-last", new Factory(ChannelsLastPass.OPTIONS, ChannelsLastPass::fromOptions));
        REGISTRY.put("qdq", new Factory(QdqPass.OPTIONS, QdqPass::fromOptions));
    }

    private final List<GraphPass> passes;

    private PassPipeline(List<GraphPass> passes) {
        this.passes = List.copyOf(passes);
    }

    public static PassPipeline of(GraphPass... passes) {
        return new PassPipeline(List.of(passes));
    }

    /** Names of the registered passes, in registration order. */
    public static Set<String> registeredPasses() {
        return Collections.unmodifiableSet(REGISTRY.keySet());
    }

    /**
     * Parses a spec such as {@code cleanup,fuse-qkv,fp16:io=fp16}.
     *
     * @throws IllegalArgumentException for an empty spec or pass, an unknown pass or option, an
     *     option without {@code =}, a repeated option, or an option value the pass rejects
     */
    public static PassPipeline parse(String spec) {
        if (spec == null || spec.isBlank()) {
            throw new IllegalArgumentException("empty pass spec; passes are " + REGISTRY.keySet());
        }
        List<GraphPass> passes = new ArrayList<>();
        for (String entry : spec.split(",", -1)) {
            String[] parts = entry.split(":", -1);
            String name = parts[0].trim();
            if (name.isEmpty()) {
                throw new IllegalArgumentException("empty pass name in spec '" + spec + "'; passes are " + REGISTRY.keySet());
            }
            Factory factory = REGISTRY.get(name);
            if (factory == null) {
                throw new IllegalArgumentException("unknown pass '" + name + "'; passes are " + REGISTRY.keySet());
            }
            Map<String, String> options = new LinkedHashMap<>();
            for (int i = 1; i < parts.length; i++) {
                int eq = parts[i].indexOf('=');
                if (eq < 0) {
                    throw new IllegalArgumentException("option '" + parts[i] + "' of pass " + name
                            + " is not key=value; options of " + name + " are " + describe(factory));
                }
                String key = parts[i].substring(0, eq).trim();
                if (factory.anyOption() ? key.isEmpty() : !factory.options().contains(key)) {
                    throw new IllegalArgumentException("unknown option '" + key + "' for pass " + name + "; options of "
                            + name + " are " + describe(factory));
                }
                if (options.put(key, parts[i].substring(eq + 1).trim()) != null) {
                    throw new IllegalArgumentException("option '" + key + "' given twice for pass " + name);
                }
            }
            passes.add(factory.create().apply(options));
        }
        return new PassPipeline(passes);
    }

    private static String describe(Factory factory) {
        Set<String> options = factory.options();
        return factory.anyOption() ? "NAME=VALUE (any name)" : options.isEmpty() ? "(none)" : new TreeSet<>(options).toString();
    }

    public List<GraphPass> passes() {
        return passes;
    }

    /** Applies every pass in order to {@code model}; one result per pass. */
    public List<PassResult> run(OnnxModel model) {
        List<PassResult> results = new ArrayList<>();
        for (GraphPass pass : passes) {
            results.add(pass.apply(model));
        }
        return results;
    }

    /** A text table: one row per pass with matches, changes, nodes and parameters before → after, time. */
    public static String summary(List<PassResult> results) {
        StringBuilder sb = new StringBuilder();
        String format = "%-14s %8s %8s %17s %23s %10s%n";
        sb.append(String.format(format, "pass", "matched", "changes", "nodes", "parameters", "time ms"));
        for (PassResult r : results) {
            sb.append(String.format(format, r.pass(), r.matched(), r.changes(),
                    r.nodesBefore() + " → " + r.nodesAfter(), r.paramsBefore() + " → " + r.paramsAfter(),
                    String.format("%.1f", r.millis())));
            for (String note : r.notes()) {
                sb.append("    ").append(note).append('\n');
            }
        }
        return sb.toString();
    }
}
