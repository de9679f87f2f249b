package dev.sdrt.runtime.trt;

import java.util.Locale;
import java.util.regex.Pattern;

/**
 * What a GPU kernel does and in which precision, guessed from its name. TensorRT's kernels carry
 * their job and data types in their names ({@code sm90_xmma_fprop_implicit_gemm_i8i8_...},
 * {@code fmha_v2_flash_attention_fp16_...}, {@code __myl_...} for Myelin's fused pointwise code), so
 * a name is enough to tell where a network's time goes: how much of it is int8 convolution, how much
 * fp16 attention, how much reformatting between layouts. A guess, not a fact: the profile also lists
 * the full names of the slowest kernels.
 */
public record KernelClass(String category, String precision) {

    public static final String ATTENTION = "attention";
    public static final String CONVOLUTION = "convolution";
    public static final String MATMUL = "matmul";
    public static final String NORMALIZATION = "normalization";
    public static final String REFORMAT = "reformat/copy";
    public static final String POINTWISE = "pointwise/fused";
    public static final String MEMORY = "memset/memcpy";
    public static final String OTHER = "other";

    // Precision tags appear as separate name parts ("_i8i8_", "_e4m3_", "_f16f16_", "fp16_").
    private static final Pattern INT8 = Pattern.compile("(^|[^a-z0-9])(i8|s8|int8|imma)");
    private static final Pattern FP8 = Pattern.compile("e4m3|e5m2|fp8|qmma");
    private static final Pattern BF16 = Pattern.compile("bf16");
    private static final Pattern FP16 = Pattern.compile("(^|[^a-z0-9b])(f16|h16|fp16|half|hmma)");
    private static final Pattern TF32 = Pattern.compile("tf32");
    private static final Pattern FP32 = Pattern.compile("(^|[^a-z0-9t])(f32|fp32|float|sgemm|scudnn)");

    /** Classifies a kernel by its (possibly mangled) name. */
    public static KernelClass ofKernel(String name) {
        String lower = name.toLowerCase(Locale.ROOT);
        return new KernelClass(category(lower), precision(lower));
    }

    /** Copies and fills are memory traffic, not kernels, in a captured graph. */
    public static KernelClass ofMemoryNode() {
        return new KernelClass(MEMORY, "");
    }

    private static String category(String name) {
        if (containsAny(name, "fmha", "mha_", "_mha", "flash", "attention", "softmax")) {
            return ATTENTION;
        }
        if (containsAny(name, "norm")) {
            return NORMALIZATION;
        }
        if (containsAny(name, "fprop", "conv", "implicit_gemm", "wgrad", "dgrad")) {
            return CONVOLUTION;
        }
        if (containsAny(name, "gemm", "matmul", "xmma", "cutlass", "cublas")) {
            return MATMUL;
        }
        if (containsAny(name, "reformat", "copy", "transpose", "shuffle", "permute", "slice", "concat")) {
            return REFORMAT;
        }
        if (containsAny(name, "__myl_", "myl", "pointwise", "elementwise", "eltwise", "generated", "activation")) {
            return POINTWISE;
        }
        return OTHER;
    }

    /**
     * The narrowest type named: a kernel that reads int8 and accumulates in int32 and writes fp32 is an
     * int8 kernel, one that reads fp16 and accumulates in fp32 is an fp16 kernel. Empty when no type is
     * named.
     */
    private static String precision(String name) {
        if (FP8.matcher(name).find()) {
            return "fp8";
        }
        if (INT8.matcher(name).find()) {
            return "int8";
        }
        if (BF16.matcher(name).find()) {
            return "bf16";
        }
        if (FP16.matcher(name).find()) {
            return "fp16";
        }
        if (TF32.matcher(name).find()) {
            return "tf32";
        }
        if (FP32.matcher(name).find()) {
            return "fp32";
        }
        return "";
    }

    private static boolean containsAny(String name, String... parts) {
        for (String part : parts) {
            if (name.contains(part)) {
                return true;
            }
        }
        return false;
    }

    /** "convolution int8", or the category alone when no precision is known. */
    public String label() {
        return precision.isEmpty() ? category : category + " " + precision;
    }
}
