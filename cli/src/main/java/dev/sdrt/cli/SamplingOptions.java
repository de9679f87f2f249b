package dev.sdrt.cli;

import dev.sdrt.runtime.pipeline.PipelineSpec;
import dev.sdrt.runtime.scheduler.Schedulers;
import picocli.CommandLine.Option;

/**
 * The sampling options that the commands running a pipeline ({@code generate}, {@code bench},
 * {@code calibrate}) share with one meaning and default: {@code --guidance} and {@code --scheduler}.
 * The commands' {@code --steps}, {@code --seed} and {@code --prompt} differ in default or meaning,
 * so each keeps its own.
 */
final class SamplingOptions {

    /** The --scheduler help, by the kind of model each scheduler fits. */
    static final String SCHEDULER_HELP = "ddim, euler, euler-a, dpm++2m or dpm++2m-karras for SD 1.x/2.x and SDXL;"
            + " flow-euler for SD3 (default: euler, or flow-euler for SD3)";

    @Option(names = "--guidance", paramLabel = "G", defaultValue = "7.5", description = "classifier-free guidance scale (default 7.5)")
    double guidance;

    @Option(names = "--scheduler", paramLabel = "NAME", description = SCHEDULER_HELP)
    String scheduler;

    /**
     * Refuses from the folder's spec alone, before its models spend seconds loading, the scheduler or
     * a size (0 for the model's default) that the pipeline would refuse once open.
     */
    void checkBeforeLoading(PipelineSpec folder, int width, int height) {
        if (scheduler != null) {
            Schedulers.requireFor(scheduler, folder.family().modelKind());
        }
        String sizeProblem = width != 0 && height != 0 ? folder.sizeProblem(width, height) : null;
        if (sizeProblem != null) {
            throw new IllegalArgumentException(sizeProblem);
        }
    }
}
