package dev.sdrt.runtime.trt;

/** A CUDA runtime call returned an error; the message names the call and CUDA's own description. */
public final class CudaException extends RuntimeException {

    private final int status;

    public CudaException(int status, String message) {
        super(message);
        this.status = status;
    }

    /** The cudaError_t value (0 is cudaSuccess and never appears here). */
    public int status() {
        return status;
    }
}
