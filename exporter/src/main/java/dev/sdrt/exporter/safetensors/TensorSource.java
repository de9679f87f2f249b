package dev.sdrt.exporter.safetensors;

import java.io.Closeable;
import java.io.IOException;
import java.util.List;

/**
 * Named tensors from one safetensors file or from a sharded checkpoint. Buffers handed out by
 * {@link #tensor(String)} stay readable after {@link #close()}: they are memory mappings, released when
 * no longer referenced.
 */
public interface TensorSource extends Closeable {

    /** All tensor names, sorted. */
    List<String> names();

    boolean contains(String name);

    /**
     * The tensor called {@code name}, mapped from disk.
     *
     * @throws SafetensorsException if there is no such tensor (the message lists close names), or it cannot be mapped
     */
    SafeTensor tensor(String name) throws IOException;
}
