package dev.sdrt.exporter;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.graphs.OnnxModel;
import dev.sdrt.graphs.ir.Value;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The SDXL UNet in fp32 has 10 GB of weights: far past protobuf's 2 GB limit, so it must be saved
 * with external data and load back intact.
 */
class LargeExportTest {
    private static final long SDXL_UNET_PARAMETERS = 2_567_463_684L;

    @Test
    void sdxlUnetInFp32SavesWithExternalDataAndLoadsBack(@TempDir Path tmp) throws Exception {
        Exporter.Result result = Exporter.random("sdxl", Component.UNET, 3, ExportOptions.defaults());
        assertThat(result.parameterCount()).isEqualTo(SDXL_UNET_PARAMETERS);
        Path file = tmp.resolve("unet.onnx");
        result.model().save(file);

        // the weights go to a data file named after its contents, which the model points to
        Path data = OnnxModel.externalDataFiles(file).get(0);
        assertThat(data.getFileName().toString()).matches("unet\\.onnx\\.[0-9a-f]{16}\\.data");
        assertThat(Files.size(data)).isGreaterThan(SDXL_UNET_PARAMETERS * 4 - 1);
        assertThat(Files.size(file)).isLessThan(16L << 20);

        OnnxModel loaded = OnnxModel.load(file);
        assertThat(loaded.externalDataFiles()).containsExactly(data.toAbsolutePath());
        long parameters = loaded.graph().initializers().stream().filter(v -> result.parameters().containsKey(v.name()))
                .mapToLong(v -> v.constant().numElements()).sum();
        assertThat(parameters).isEqualTo(SDXL_UNET_PARAMETERS);

        // Weights read back from the 10 GB side file equal freshly generated ones (same seed).
        OnnxModel fresh = Exporter.random("sdxl", Component.UNET, 3, ExportOptions.defaults()).model();
        for (String name : new String[] {"conv_in.weight", "up_blocks.0.attentions.2.transformer_blocks.9.ff.net.2.weight",
                "conv_out.bias"}) {
            Value v = loaded.graph().requireValue(name);
            assertThat(v.constant().bytes()).as(name).isEqualTo(fresh.graph().requireValue(name).constant().bytes());
        }
    }
}
