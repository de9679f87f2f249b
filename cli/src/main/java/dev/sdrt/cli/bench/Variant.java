package dev.sdrt.cli.bench;

import dev.sdrt.graphs.passes.PassPipeline;
import dev.sdrt.runtime.pipeline.PipelineFamily;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Consumer;

/**
 * One benchmark variant: a name such as {@code fp16+tome:0.5+deepcache:3}, made of {@code +}-joined
 * parts over the exported (fp32) UNet, and the UNet pass spec those parts map to.
 *
 * <pre>
 *   fp32                 no pass (the exported graph)
 *   fp16 | bf16          precision pass (last, or before qdq)
 *   fuse-qkv             fuse-qkv
 *   channels-last        channels-last
 *   tome:R               tome:ratio=R (tome:R:max_downsample=D: also the blocks up to D times coarser)
 *   int8 | fp8           qdq with the --scales file
 *   deepcache:N          DeepCache: full UNet every N steps, shallow UNet (branch 0) between
 * </pre>
 *
 * Passes run in the order the parts are written, the precision part last, or just before qdq (see
 * {@link #precisionPosition}). A variant with a pass
 * that needs static shapes ({@link #SHAPE_DEPENDENT_PASSES}: tome) is {@linkplain #perCell() built
 * per cell}: its denoiser is pinned to the cell's batch and latent size with {@code static-shapes}
 * before its passes run. A variant that cannot run
 * is not an error: it carries its {@link Status} and reason into the report, and the others still run.
 *
 * @param name    the variant as the user wrote it
 * @param parts   its parts
 * @param passes  the UNet pass spec; empty for the exported graph as is; null when the variant cannot run
 * @param status  whether it can run
 * @param reason  why not (null when it can)
 */
public record Variant(String name, List<String> parts, String passes, int deepCache, Status status, String reason) {

    public enum Status {
        RUNNABLE, FAILED
    }

    /** The part names this parser knows, for error messages. */
    public static final String KNOWN_PARTS = "fp32, fp16, bf16, fuse-qkv, channels-last, tome:R[:max_downsample=D],"
            + " int8, fp8, deepcache:N";

    /**
     * Passes that plan on static shapes (token merging needs static token counts), so the rewritten
     * denoiser depends on the size and batch it runs at.
     */
    public static final Set<String> SHAPE_DEPENDENT_PASSES = Set.of("tome");

    /** qdq option names that may select fp8 (the qdq pass names its own; the first it accepts is used). */
    private static final List<String> FP8_OPTION_KEYS = List.of("type", "format", "dtype", "precision", "mode");

    public boolean runnable() {
        return status == Status.RUNNABLE;
    }

    /**
     * Whether the rewritten denoiser depends on the cell (size and batch): one of its passes is in
     * {@link #SHAPE_DEPENDENT_PASSES}, so each cell gets its own folder, pinned to its shapes.
     */
    public boolean perCell() {
        if (passes == null || passes.isEmpty()) {
            return false;
        }
        for (String pass : passes.split(",")) {
            if (SHAPE_DEPENDENT_PASSES.contains(pass.split(":", 2)[0].trim())) {
                return true;
            }
        }
        return false;
    }

    /** The variants run by default on the CPU: channels-last only where this build registers that pass. */
    public static List<String> defaultNames(Set<String> registeredPasses) {
        return defaultNames(registeredPasses, PipelineFamily.SD);
    }

    /**
     * The default variants for a pipeline family. SDXL's UNet has no transformer blocks at the
     * latent's own resolution, so its tome variants merge one level down (max_downsample=2, as
     * tomesd advises for SDXL); SD3's transformer has joint attention only, which token merging
     * leaves alone, so its defaults have no tome variants.
     */
    public static List<String> defaultNames(Set<String> registeredPasses, PipelineFamily family) {
        List<String> names = new ArrayList<>(List.of("fp32", "fp32+fuse-qkv"));
        if (family == PipelineFamily.SD) {
            names.addAll(List.of("fp32+tome:0.3", "fp32+tome:0.5"));
        } else if (family == PipelineFamily.SDXL) {
            names.addAll(List.of("fp32+tome:0.3:max_downsample=2", "fp32+tome:0.5:max_downsample=2"));
        }
        if (registeredPasses.contains("channels-last")) {
            names.add("fp32+channels-last");
        }
        return names;
    }

    /** Splits a comma-separated list of variant names; repeated names are kept once. */
    public static List<String> splitList(String spec) {
        Set<String> names = new LinkedHashSet<>();
        for (String s : spec.split(",")) {
            String n = s.trim();
            if (!n.isEmpty()) {
                names.add(n);
            }
        }
        if (names.isEmpty()) {
            throw new IllegalArgumentException("--variants names no variant; e.g. fp32,fp32+fuse-qkv,fp32+tome:0.5");
        }
        return List.copyOf(names);
    }

    /**
     * Parses one variant name against the passes this build registers; {@code scales} is the
     * calibration file int8/fp8 need (may be null).
     */
    public static Variant parse(String name, Set<String> registeredPasses, Path scales) {
        return parse(name, registeredPasses, scales, PassPipeline::parse);
    }

    /** As {@link #parse(String, Set, Path)}, with {@code validate} checking the final pass spec (tests pass their own). */
    static Variant parse(String name, Set<String> registeredPasses, Path scales, Consumer<String> validate) {
        List<String> parts = new ArrayList<>();
        for (String p : name.split("\\+", -1)) {
            parts.add(p.trim());
        }
        String precision = null;
        List<String> passes = new ArrayList<>();
        int deepCache = 1;
        for (String part : parts) {
            String lower = part.toLowerCase(Locale.ROOT);
            if (lower.isEmpty()) {
                return failed(name, parts, "empty part in '" + name + "' (parts: " + KNOWN_PARTS + ")");
            }
            if (lower.equals("fp32") || lower.equals("fp16") || lower.equals("bf16")) {
                if (precision != null) {
                    return failed(name, parts, "two precisions (" + precision + " and " + lower + ") in one variant");
                }
                precision = lower;
            } else if (lower.equals("fuse-qkv") || lower.equals("channels-last") || lower.equals("cleanup")) {
                passes.add(lower);
            } else if (lower.startsWith("tome:") || lower.equals("tome")) {
                String[] options = (lower.equals("tome") ? "" : lower.substring(5)).split(":", -1);
                String value = options[0].trim();
                if (value.startsWith("ratio=")) {
                    value = value.substring(6).trim();
                }
                double ratio;
                try {
                    ratio = Double.parseDouble(value);
                } catch (NumberFormatException e) {
                    return failed(name, parts, "tome needs a ratio, e.g. tome:0.5 (got '" + part + "')");
                }
                if (!(ratio >= 0 && ratio <= 0.75)) {
                    return failed(name, parts, "tome ratio must be in [0, 0.75], got " + value);
                }
                String spec = "tome:ratio=" + value;
                for (int i = 1; i < options.length; i++) {
                    String option = options[i].trim();
                    String d = option.startsWith("max_downsample=") ? option.substring(15).trim() : null;
                    try {
                        if (d == null || Integer.parseInt(d) < 1) {
                            throw new NumberFormatException();
                        }
                    } catch (NumberFormatException e) {
                        return failed(name, parts, "tome takes a ratio and optionally max_downsample=D (D ≥ 1), e.g."
                                + " tome:0.5:max_downsample=2 (got '" + part + "')");
                    }
                    spec += ":max_downsample=" + d;
                }
                passes.add(spec);
            } else if (lower.equals("int8") || lower.equals("fp8")) {
                if (!registeredPasses.contains("qdq")) {
                    return failed(name, parts, lower + " needs the qdq pass, which this build does not have");
                }
                if (scales == null) {
                    return failed(name, parts, lower + " needs calibration scales: pass --scales FILE"
                            + " (make one with 'sdrt calibrate --model DIR --out FILE')");
                }
                String qdq = "qdq:scales=" + scales.toAbsolutePath();
                if (lower.equals("fp8")) {
                    qdq = fp8Spec(qdq, validate);
                    if (qdq == null) {
                        return failed(name, parts, "the qdq pass of this build has no option that selects fp8");
                    }
                }
                passes.add(qdq);
            } else if (lower.startsWith("deepcache")) {
                String value = lower.startsWith("deepcache:") ? lower.substring(10).trim() : "";
                try {
                    deepCache = Integer.parseInt(value);
                    if (deepCache < 1) {
                        throw new NumberFormatException();
                    }
                } catch (NumberFormatException e) {
                    return failed(name, parts, "deepcache needs an interval N ≥ 1, e.g. deepcache:3 (got '" + part + "')");
                }
            } else {
                return failed(name, parts, "unknown part '" + part + "' (parts: " + KNOWN_PARTS + ")");
            }
        }
        for (String pass : passes) {
            String passName = pass.split(":", 2)[0];
            if (!registeredPasses.contains(passName)) {
                return failed(name, parts, "pass '" + passName + "' is not in this build (passes: " + registeredPasses + ")");
            }
        }
        if (precision != null && !precision.equals("fp32")) {
            if (!registeredPasses.contains(precision)) {
                return failed(name, parts, "pass '" + precision + "' is not in this build (passes: " + registeredPasses + ")");
            }
            passes.add(precisionPosition(passes), precision);
        }
        String spec = String.join(",", passes);
        if (!spec.isEmpty()) {
            try {
                validate.accept(spec);
            } catch (RuntimeException e) {
                return failed(name, parts, "pass spec '" + spec + "': " + e.getMessage());
            }
        }
        return new Variant(name, parts, spec, deepCache, Status.RUNNABLE, null);
    }

    /**
     * Where the precision pass goes: last, except before the first qdq pass. Q/DQ on a half graph
     * take half scales (QuantizeLinear-19), so no Cast sits between a DequantizeLinear and the layer
     * it feeds, the pattern TensorRT fuses into int8/fp8 kernels; qdq before fp16 would leave a Cast
     * to fp32 before every QuantizeLinear and one back to fp16 after every DequantizeLinear.
     */
    static int precisionPosition(List<String> passes) {
        for (int i = 0; i < passes.size(); i++) {
            if (passes.get(i).startsWith("qdq")) {
                return i;
            }
        }
        return passes.size();
    }

    private static Variant failed(String name, List<String> parts, String reason) {
        return new Variant(name, parts, null, 1, Status.FAILED, reason);
    }

    /**
     * Adds the option that selects fp8 to a qdq spec: the qdq pass names it itself, so the few
     * usual names are tried and the first the pass accepts is kept; null when it accepts none.
     */
    private static String fp8Spec(String qdq, Consumer<String> validate) {
        for (String key : FP8_OPTION_KEYS) {
            String candidate = qdq + ":" + key + "=fp8";
            try {
                validate.accept(candidate);
                return candidate;
            } catch (RuntimeException e) {
                String m = String.valueOf(e.getMessage());
                if (!m.contains("unknown option")) {
                    return candidate; // the key exists; parse() again later reports what it rejects
                }
            }
        }
        return null;
    }
}
