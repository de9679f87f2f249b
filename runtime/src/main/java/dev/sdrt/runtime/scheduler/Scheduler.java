package dev.sdrt.runtime.scheduler;

/** A sampler that turns a number of inference steps into a precomputed {@link SchedulePlan}. */
public interface Scheduler {

    SchedulerConfig config();

    /** The plan for {@code steps} inference steps; the same arguments always give the same plan. */
    SchedulePlan plan(int steps);
}
