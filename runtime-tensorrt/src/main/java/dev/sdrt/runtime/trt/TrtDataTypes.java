package dev.sdrt.runtime.trt;

import dev.sdrt.runtime.tensor.DType;
import org.bytedeco.tensorrt.global.nvinfer.DataType;

/** Conversions between TensorRT's DataType and sdrt's {@link DType}. */
public final class TrtDataTypes {

    private TrtDataTypes() {}

    /** The sdrt dtype for a TensorRT type, or null for types sdrt tensors cannot hold (FP8, INT4). */
    public static DType toDType(DataType type) {
        return switch (type.intern()) {
            case kFLOAT -> DType.FLOAT32;
            case kHALF -> DType.FLOAT16;
            case kBF16 -> DType.BFLOAT16;
            case kINT32 -> DType.INT32;
            case kINT64 -> DType.INT64;
            case kINT8 -> DType.INT8;
            case kUINT8 -> DType.UINT8;
            case kBOOL -> DType.BOOL;
            case kFP8, kINT4 -> null;
        };
    }

    /** A lower-case name for messages and manifests: sdrt's dtype name, or "fp8" / "int4". */
    public static String name(DataType type) {
        DType dtype = toDType(type);
        if (dtype != null) {
            return dtype.displayName();
        }
        return type.intern() == DataType.kFP8 ? "fp8" : "int4";
    }
}
