package dev.sdrt.exporter.safetensors;

import static dev.sdrt.exporter.json.JsonInput.abbreviate;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.sdrt.exporter.json.JsonInput;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A checkpoint split over several safetensors files, described by an index
 * ({@code *.safetensors.index.json}: {"metadata": {...}, "weight_map": {tensor: shard file name}}).
 * The index is read and checked on {@link #open}; each shard is opened on the first request for one of
 * its tensors.
 */
public final class ShardedSafetensors implements TensorSource {
    /**
     * An index lists tensor names and file names: the largest checkpoints' are a few megabytes. A larger
     * file is not an index, and would be read into memory whole.
     */
    static final long MAX_INDEX_BYTES = 100_000_000L;
    /** An index nests two levels ({"weight_map": {...}}); a little more leaves room for rich metadata. */
    static final int MAX_INDEX_DEPTH = 8;

    private final Path indexFile;
    private final Map<String, Path> shardOfTensor;
    private final List<String> names;
    private final Map<Path, SafetensorsFile> openShards = new HashMap<>();
    private boolean closed;

    private ShardedSafetensors(Path indexFile, Map<String, Path> shardOfTensor) {
        this.indexFile = indexFile;
        this.shardOfTensor = shardOfTensor;
        this.names = List.copyOf(shardOfTensor.keySet());
    }

    /**
     * Reads the index. Shard names must stay inside the index's folder: an index is data from elsewhere,
     * and must not make us open arbitrary files.
     */
    public static ShardedSafetensors open(Path indexFile) throws IOException {
        long size = Files.size(indexFile);
        if (size > MAX_INDEX_BYTES) {
            throw new SafetensorsException(indexFile + ": index is " + size + " bytes, more than the "
                    + MAX_INDEX_BYTES + " an index can be (is it an index?)");
        }
        String text = Files.readString(indexFile);
        Optional<String> tooDeep = JsonInput.pathDeeperThan(text, MAX_INDEX_DEPTH);
        if (tooDeep.isPresent()) {
            throw new SafetensorsException(indexFile + ": index nests more than " + MAX_INDEX_DEPTH
                    + " levels deep, at " + tooDeep.get());
        }
        JsonElement root;
        try {
            root = JsonParser.parseString(text);
        } catch (JsonParseException e) {
            throw new SafetensorsException(indexFile + ": index is not valid JSON: " + JsonInput.describeError(e), e);
        }
        JsonElement weightMap = root.isJsonObject() ? root.getAsJsonObject().get("weight_map") : null;
        if (weightMap == null || !weightMap.isJsonObject()) {
            throw new SafetensorsException(indexFile + ": index has no 'weight_map' object");
        }
        Path folder = indexFile.toAbsolutePath().normalize().getParent();
        Map<String, Path> shardOfTensor = new TreeMap<>();
        for (Map.Entry<String, JsonElement> item : ((JsonObject) weightMap).entrySet()) {
            JsonElement shardName = item.getValue();
            if (!shardName.isJsonPrimitive() || !shardName.getAsJsonPrimitive().isString()) {
                throw new SafetensorsException(indexFile + ": tensor '" + abbreviate(item.getKey())
                        + "' maps to " + abbreviate(shardName.toString()) + ", not a file name");
            }
            shardOfTensor.put(item.getKey(), resolveShard(indexFile, folder, shardName.getAsString()));
        }
        return new ShardedSafetensors(indexFile, shardOfTensor);
    }

    private static Path resolveShard(Path indexFile, Path folder, String shardName) throws SafetensorsException {
        Path shard;
        try {
            shard = Path.of(shardName);
        } catch (InvalidPathException e) {
            throw new SafetensorsException(indexFile + ": shard name '" + abbreviate(shardName) + "' is not a valid path", e);
        }
        Path resolved = folder.resolve(shard).normalize();
        if (shard.isAbsolute() || !resolved.startsWith(folder) || resolved.equals(folder)) {
            throw new SafetensorsException(indexFile + ": shard '" + abbreviate(shardName)
                    + "' is not a file inside the index's folder " + folder);
        }
        return resolved;
    }

    public Path indexFile() {
        return indexFile;
    }

    /** The distinct shard files the index names, sorted. */
    public List<Path> shardFiles() {
        return List.copyOf(new TreeSet<>(shardOfTensor.values()));
    }

    @Override
    public List<String> names() {
        return names;
    }

    @Override
    public boolean contains(String name) {
        return shardOfTensor.containsKey(name);
    }

    @Override
    public SafeTensor tensor(String name) throws IOException {
        Path shardPath = shardOfTensor.get(name);
        if (shardPath == null) {
            throw new SafetensorsException(indexFile + ": " + NameSuggestions.describeMissing("tensor", names, name));
        }
        SafetensorsFile shard = shard(shardPath);
        if (!shard.contains(name)) {
            throw new SafetensorsException(indexFile + ": maps tensor '" + abbreviate(name) + "' to shard "
                    + shardPath + ", which has no such tensor");
        }
        return shard.tensor(name);
    }

    private synchronized SafetensorsFile shard(Path shardPath) throws IOException {
        if (closed) {
            throw new SafetensorsException(indexFile + ": closed");
        }
        SafetensorsFile shard = openShards.get(shardPath);
        if (shard == null) {
            try {
                shard = SafetensorsFile.open(shardPath);
            } catch (NoSuchFileException e) {
                throw new SafetensorsException(indexFile + ": shard " + shardPath + " does not exist", e);
            }
            openShards.put(shardPath, shard);
        }
        return shard;
    }

    /** Closes every shard opened so far, even when closing one fails. */
    @Override
    public synchronized void close() throws IOException {
        closed = true;
        IOException failure = null;
        for (SafetensorsFile shard : openShards.values()) {
            try {
                shard.close();
            } catch (IOException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        openShards.clear();
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public String toString() {
        return "ShardedSafetensors[" + indexFile + ", " + names.size() + " tensors in "
                + shardFiles().size() + " shards]";
    }
}
