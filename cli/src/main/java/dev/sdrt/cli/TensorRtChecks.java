package dev.sdrt.cli;

import dev.sdrt.runtime.trt.TensorRt;

/** The commands' refusals, up front and saying why, of TensorRT work this machine or these options cannot do. */
final class TensorRtChecks {
    private TensorRtChecks() {
    }

    /**
     * Refuses {@code --backend tensorrt} on a machine without a usable GPU and TensorRT, saying why and
     * what runs without one ({@code withoutIt}, e.g. "--backend cpu runs without one").
     */
    static void requireTensorRtBackend(String withoutIt) {
        if (!TensorRt.isAvailable()) {
            throw new IllegalStateException("--backend tensorrt needs an NVIDIA GPU with TensorRT: " + TensorRt.unavailableReason()
                    + " (" + withoutIt + ")");
        }
    }

    /** Refuses a TensorRT builder optimization level outside 0..5 up front, before minutes of export or calibration. */
    static void checkOptLevel(int optLevel) {
        if (optLevel < 0 || optLevel > 5) {
            throw new IllegalArgumentException("--opt-level must be between 0 and 5, got " + optLevel);
        }
    }

    /** Refuses, saying why, where TensorRT cannot build engines (no GPU, no TensorRT libraries); {@code hint} says what to do instead. */
    static void requireTensorRt(String hint) {
        if (!TensorRt.isAvailable()) {
            throw new IllegalStateException("cannot build TensorRT engines on this machine: " + TensorRt.unavailableReason()
                    + " (" + hint + ")");
        }
    }
}
