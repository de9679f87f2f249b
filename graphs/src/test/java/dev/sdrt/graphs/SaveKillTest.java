package dev.sdrt.graphs;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.graphs.ir.DataType;
import dev.sdrt.graphs.ir.Graph;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.TensorData;
import dev.sdrt.graphs.ir.Value;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A child JVM saves two versions of a model with external data over each other, again and again,
 * and is killed (SIGKILL) at seeded random moments. After each kill the target must load and be
 * one of the two versions, complete: never a mix of one's graph and the other's weights, never
 * unloadable.
 */
class SaveKillTest {
    private static final long SEED = 0x5d47_2024L;
    private static final int KILLS = 10;
    /** Stops early (after at least MIN_KILLS) when kills take longer than this on a slow machine. */
    private static final long BUDGET_NANOS = TimeUnit.SECONDS.toNanos(15);
    private static final int MIN_KILLS = 4;
    private static final String STARTED = "started";
    private static final String SAVED = "saved";

    @TempDir
    Path tmp;

    /**
     * Version 0 or 1: different layouts (tensor count and sizes), so one version's graph next to
     * the other's data is either unloadable or visibly wrong, and an inline tensor in each.
     */
    static OnnxModel version(int version) {
        int width = version == 0 ? 384 : 320;
        int layers = version == 0 ? 6 : 8;
        Graph g = new Graph("version_" + version);
        Value h = g.addInput("x", DataType.FLOAT, Shape.of(1, width));
        Random weights = new Random(version);
        for (int i = 0; i < layers; i++) {
            float[] w = new float[width * width];
            for (int j = 0; j < w.length; j++) {
                w[j] = weights.nextFloat() - 0.5f;
            }
            h = g.op("MatMul", "/layer" + i + "/MatMul", h, g.addInitializer("layer" + i + ".weight",
                    TensorData.ofFloats(new long[] {width, width}, w)));
        }
        Value scale = g.addInitializer("scale", TensorData.ofFloats(new long[] {1}, version + 1)); // inline: under 1 KiB
        Value y = g.op("Mul", "/scale/Mul", h, scale);
        y.setTypeAndShape(DataType.FLOAT, Shape.of(1, width));
        g.rename(y, "y");
        g.addOutput(y);
        return new OnnxModel(g, 17);
    }

    private static Map<String, ByteBuffer> weights(OnnxModel m) {
        Map<String, ByteBuffer> out = new LinkedHashMap<>();
        for (Value v : m.graph().initializers()) {
            out.put(v.name(), v.constant().bytes());
        }
        return out;
    }

    @Test
    void killedSavesLeaveTheOldModelOrTheNewOneComplete() throws Exception {
        Path target = tmp.resolve("model.onnx");
        version(0).save(target, Saver.OPTIONS);
        List<Map<String, ByteBuffer>> versions = List.of(weights(version(0)), weights(version(1)));

        Random random = new Random(SEED);
        long start = System.nanoTime();
        int kills = 0;
        List<Integer> seen = new ArrayList<>();
        while (kills < KILLS && (kills < MIN_KILLS || System.nanoTime() - start < BUDGET_NANOS)) {
            // C1 only: a child lives about a second, too short for the optimizing compiler to pay off
            Process child = new ProcessBuilder(DeterministicSaveTest.java(), "-XX:TieredStopAtLevel=1", "-Xmx512m", "-cp",
                    System.getProperty("java.class.path"), Saver.class.getName(), target.toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start();
            try {
                BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
                assertThat(out.readLine()).as("child output").isEqualTo(STARTED);
                // some kills hit the first save (cold: class loading, the native checker), the others a later one
                // (a warm save takes some 30 ms), at any point of it
                int saves = random.nextInt(4);
                for (int i = 0; i < saves; i++) {
                    assertThat(out.readLine()).as("child output").isEqualTo(SAVED);
                }
                Thread.sleep(saves == 0 ? random.nextInt(400) : random.nextInt(50));
                assertThat(child.isAlive()).as("child still saving").isTrue();
            } finally {
                child.destroyForcibly();
                child.waitFor(30, TimeUnit.SECONDS);
            }
            kills++;

            OnnxModel loaded = OnnxModel.load(target);
            Map<String, ByteBuffer> found = weights(loaded);
            int which = versions.indexOf(found);
            assertThat(which).as("after kill %d the target holds one version, complete (initializers %s)", kills,
                    found.keySet()).isNotNegative();
            seen.add(which);
        }
        // every save of the target ends by removing leftovers of killed ones
        version(1).save(target, Saver.OPTIONS);
        try (var files = Files.list(tmp)) {
            assertThat(files.map(p -> p.getFileName().toString()).toList()).containsExactlyInAnyOrder("model.onnx",
                    OnnxModel.externalDataFiles(target).get(0).getFileName().toString());
        }
        // which version each kill left depends on timing; the seeded schedule makes both likely, not certain
        System.out.printf("SaveKillTest: %d kills in %.1f s, versions found %s%n", kills, (System.nanoTime() - start) / 1e9, seen);
    }

    /** Child JVM: saves version 1 and version 0 over the target in turn until killed, saying when each is saved. */
    public static final class Saver {
        static final SaveOptions OPTIONS = SaveOptions.defaults().withExternalData(SaveOptions.ExternalData.ALWAYS)
                .withCheck(true);

        public static void main(String[] args) throws IOException {
            Path target = Path.of(args[0]);
            OnnxModel[] models = {version(1), version(0)};
            System.out.println(STARTED);
            System.out.flush();
            for (int i = 0; ; i++) {
                models[i % 2].save(target, OPTIONS);
                System.out.println(SAVED);
                System.out.flush();
            }
        }
    }
}
