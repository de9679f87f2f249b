package dev.sdrt.cli.bench;

import dev.sdrt.calibration.FidelityReport;
import dev.sdrt.cli.bench.BenchSettings.Size;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/** Everything one bench run measured, as the report writers read it. */
public record BenchResult(BenchSettings settings, Map<String, String> environment, List<VariantResult> variants,
        Instant started, double seconds) {

    /** A cell's outcome. */
    public enum CellStatus {
        OK, FAILED, OOM
    }

    /**
     * One variant.
     *
     * @param status "ok" when it ran (its cells may still fail one by one) or "failed"
     * @param cache  "baseline model", "built", "reused", or null when no folder was made; for a per-cell variant
     *               its cells' ("built", "reused", or e.g. "built 1, reused 2")
     * @param folder the variant's folder; a per-cell variant's first, each cell's is in {@link Cell#prepared()}
     * @param passes what the passes did; a per-cell variant's first cell's, each cell's is in {@link Cell#prepared()}
     */
    public record VariantResult(Variant variant, String status, String reason, String cache, Path folder, double prepareMs,
            List<VariantFolders.PassSummary> passes, List<Cell> cells) {

        public boolean ran() {
            return "ok".equals(status);
        }

        public Cell cell(Size size, int batch) {
            for (Cell c : cells) {
                if (c.size().equals(size) && c.batch() == batch) {
                    return c;
                }
            }
            return null;
        }
    }

    /**
     * One variant at one size and batch.
     *
     * @param runMs          wall-clock milliseconds of each timed request (text encoder, denoising, VAE)
     * @param secondsPerImage from runMs, divided by the batch
     * @param unetMsPerStep  denoising loop time of each timed run divided by the steps
     * @param speedupPct     (baseline s/image ÷ this s/image − 1) × 100; 0 for the baseline; null without a baseline
     * @param peakRssBytes   peak process RSS during the cell (JVM + native); null: n/a
     * @param rssDeltaBytes  that peak minus RSS before the variant's pipeline opened; null: n/a
     * @param deviceMemoryBytes device memory the cell's pipeline added by the end of its runs (engines not loaded before,
     *                       activations, loop buffers); null on backends without a device
     * @param fidelity       against the baseline's cell; null for the baseline itself or without one
     * @param prepared       the cell's own folder for a {@linkplain Variant#perCell() per-cell} variant; null when
     *                       the variant has one folder for every cell (or none could be made)
     */
    public record Cell(Size size, int batch, CellStatus status, String reason, double[] runMs, double[] unetMsPerStep,
            double[] textEncoderMs, double[] vaeDecoderMs, Stats secondsPerImage, Stats unetStep, Double speedupPct,
            Long peakRssBytes, Long rssDeltaBytes, Long deviceMemoryBytes, String memoryMethod, FidelityReport fidelity,
            VariantFolders.Prepared prepared) {

        public boolean ok() {
            return status == CellStatus.OK;
        }

        /** A cell that did not run. */
        static Cell failed(Size size, int batch, CellStatus status, String reason, VariantFolders.Prepared prepared) {
            return new Cell(size, batch, status, reason, null, null, null, null, null, null, null, null, null, null, null, null,
                    prepared);
        }

        Cell withPrepared(VariantFolders.Prepared p) {
            return new Cell(size, batch, status, reason, runMs, unetMsPerStep, textEncoderMs, vaeDecoderMs, secondsPerImage,
                    unetStep, speedupPct, peakRssBytes, rssDeltaBytes, deviceMemoryBytes, memoryMethod, fidelity, p);
        }
    }
}
