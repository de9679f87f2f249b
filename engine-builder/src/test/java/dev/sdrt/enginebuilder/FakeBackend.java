package dev.sdrt.enginebuilder;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Stands in for TensorRT: writes a small "plan" naming the profile, and counts builds. */
final class FakeBackend implements EngineCache.Backend {

    int builds;

    @Override
    public EngineCache.BuiltEngine build(EngineBuildRequest request, OnnxSummary model, ShapeProfile profile,
            Path planFile, BuildProgress progress) throws IOException {
        builds++;
        progress.phaseStart("fake build", null, 1);
        Files.writeString(planFile, "fake plan #" + builds + " for " + profile.inputs(), StandardCharsets.UTF_8);
        progress.stepComplete("fake build", 0);
        progress.phaseFinish("fake build");
        List<TensorDescription> inputs = model.inputs().stream()
                .map(t -> new TensorDescription(t.name(), t.dtype(), t.shape())).toList();
        List<TensorDescription> outputs = model.outputs().stream()
                .map(t -> new TensorDescription(t.name(), t.dtype(), t.shape())).toList();
        return new EngineCache.BuiltEngine(inputs, outputs);
    }
}
