package dev.sdrt.cli;

import dev.sdrt.graphs.ir.DataType;

/** The {@code --precision} names of the export commands. */
final class Precisions {
    private Precisions() {
    }

    /** fp32, fp16 or bf16 as the weights' data type; anything else is refused, naming the three. */
    static DataType parse(String p) {
        return switch (p) {
            case "fp32" -> DataType.FLOAT;
            case "fp16" -> DataType.FLOAT16;
            case "bf16" -> DataType.BFLOAT16;
            default -> throw new IllegalArgumentException("--precision must be fp32, fp16 or bf16, not '" + p + "'");
        };
    }
}
