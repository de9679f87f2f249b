package dev.sdrt.exporter.safetensors;

import dev.sdrt.graphs.io.AtomicFiles;
import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Collects tensors and writes them as one safetensors file. The file appears complete or not at all: it is
 * written beside the target under a temporary name, then moved into place.
 *
 * <p>Test code: no main code writes safetensors files; the exporter's tests write the ones they read
 * (sharded, fuzzed, malformed on purpose).
 */
public final class SafetensorsWriter {
    private static final int HEADER_ALIGNMENT = 8;

    private final Map<String, String> metadata = new TreeMap<>();
    private final Map<String, PendingTensor> tensors = new TreeMap<>();

    private record PendingTensor(String name, SafeDType dtype, long[] shape, ByteBuffer data) {
    }

    /** Adds a {@code __metadata__} entry, for example ("format", "pt"). */
    public SafetensorsWriter putMetadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /**
     * Adds a tensor whose little-endian, C-order bytes are {@code data}'s remaining bytes; they are not
     * copied, so leave them unchanged until {@link #write}.
     *
     * @throws IllegalArgumentException for a duplicate or reserved name, a negative dimension, a shape too
     *                                  large to count in bytes, or a byte count that does not match the shape
     */
    public SafetensorsWriter add(String name, SafeDType dtype, long[] shape, ByteBuffer data) {
        if (name.isEmpty() || name.equals("__metadata__")) {
            throw new IllegalArgumentException("'" + name + "' cannot be a tensor name");
        }
        if (tensors.containsKey(name)) {
            throw new IllegalArgumentException("tensor '" + name + "' was already added");
        }
        long expectedBytes;
        try {
            long elements = 1;
            for (long dim : shape) {
                if (dim < 0) {
                    throw new IllegalArgumentException("tensor '" + name + "': negative dimension in "
                            + Arrays.toString(shape));
                }
                elements = Math.multiplyExact(elements, dim);
            }
            expectedBytes = Math.multiplyExact(elements, dtype.byteSize());
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(shape)
                    + " has too many elements: they would take more than " + Long.MAX_VALUE + " bytes of " + dtype);
        }
        if (data.remaining() != expectedBytes) {
            throw new IllegalArgumentException("tensor '" + name + "': " + data.remaining() + " bytes given but "
                    + dtype + Arrays.toString(shape) + " needs " + expectedBytes);
        }
        tensors.put(name, new PendingTensor(name, dtype, shape.clone(), data.slice()));
        return this;
    }

    /** Adds a float32 tensor. */
    public SafetensorsWriter addFloats(String name, long[] shape, float[] values) {
        ByteBuffer bytes = ByteBuffer.allocate(Math.multiplyExact(values.length, Float.BYTES))
                .order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(values);
        return add(name, SafeDType.F32, shape, bytes);
    }

    /** Adds a tensor read from another file, under its own name. */
    public SafetensorsWriter add(SafeTensor tensor) {
        return add(tensor.name(), tensor.dtype(), tensor.shape(), tensor.data());
    }

    /** Writes everything added so far to {@code file}, replacing it if it exists. */
    public void write(Path file) throws IOException {
        // Widest elements first, as the Python library orders them: every tensor then starts at a multiple
        // of its element size, so readers that map it in place get aligned data.
        List<PendingTensor> ordered = new ArrayList<>(tensors.values());
        ordered.sort(Comparator.comparingInt((PendingTensor t) -> -t.dtype().byteSize())
                .thenComparing(PendingTensor::name));
        byte[] header = headerJson(ordered);
        int paddedLength = (header.length + HEADER_ALIGNMENT - 1) / HEADER_ALIGNMENT * HEADER_ALIGNMENT;
        ByteBuffer prefix = ByteBuffer.allocate(Long.BYTES + paddedLength).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(paddedLength).put(header);
        while (prefix.hasRemaining()) {
            prefix.put((byte) ' '); // the format pads the header with spaces
        }
        prefix.flip();

        AtomicFiles.write(file, temporary -> {
            try (FileChannel channel = FileChannel.open(temporary, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                writeFully(channel, prefix);
                for (PendingTensor tensor : ordered) {
                    writeFully(channel, tensor.data().duplicate());
                }
                channel.force(false);
            }
        });
    }

    private byte[] headerJson(List<PendingTensor> ordered) {
        StringWriter text = new StringWriter();
        try (JsonWriter json = new JsonWriter(text)) {
            json.beginObject();
            if (!metadata.isEmpty()) {
                json.name("__metadata__").beginObject();
                for (Map.Entry<String, String> item : metadata.entrySet()) {
                    json.name(item.getKey()).value(item.getValue());
                }
                json.endObject();
            }
            long offset = 0;
            for (PendingTensor tensor : ordered) {
                json.name(tensor.name()).beginObject();
                json.name("dtype").value(tensor.dtype().name());
                json.name("shape").beginArray();
                for (long dim : tensor.shape()) {
                    json.value(dim);
                }
                json.endArray();
                long end = offset + tensor.data().remaining();
                json.name("data_offsets").beginArray().value(offset).value(end).endArray();
                json.endObject();
                offset = end;
            }
            json.endObject();
        } catch (IOException e) {
            throw new UncheckedIOException("writing JSON to a StringWriter cannot fail", e);
        }
        return text.toString().getBytes(StandardCharsets.UTF_8);
    }

    private static void writeFully(FileChannel channel, ByteBuffer bytes) throws IOException {
        while (bytes.hasRemaining()) {
            channel.write(bytes);
        }
    }
}
