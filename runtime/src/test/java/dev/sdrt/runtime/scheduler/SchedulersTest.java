package dev.sdrt.runtime.scheduler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class SchedulersTest {

    private static final SchedulerConfig SD = SchedulerConfig.stableDiffusion();

    @Test
    void createsEachSchedulerByName() {
        assertThat(Schedulers.create("ddim", SD)).isInstanceOf(DdimScheduler.class);
        assertThat(Schedulers.create("euler", SD)).isInstanceOf(EulerScheduler.class);
        assertThat(Schedulers.create("euler-a", SD)).isInstanceOf(EulerAncestralScheduler.class);
        assertThat(Schedulers.create("dpm++2m", SD)).isInstanceOf(DpmSolverMultistepScheduler.class);
        assertThat(Schedulers.create("DPM++2M-Karras", SD)).isInstanceOf(DpmSolverMultistepScheduler.class);
        assertThat(Schedulers.create("flow-euler", SchedulerConfig.stableDiffusion3()))
                .isInstanceOf(FlowMatchEulerScheduler.class);
        for (String name : Schedulers.NAMES) {
            SchedulePlan plan = Schedulers.create(name, SD).plan(12);
            assertThat(plan.size()).as(name).isEqualTo(12);
            // Every scheduler ends noise-free, except DDIM, which with SD's set_alpha_to_one = false
            // stops at the smallest training noise level.
            double finalSigma = name.equals("ddim") ? NoiseSchedule.of(SD).sigma(0) : 0.0;
            assertThat(plan.sigmas()[12]).as(name).isEqualTo(finalSigma);
        }
    }

    @Test
    void karrasNameTurnsKarrasSigmasOn() {
        Scheduler karras = Schedulers.create("dpm++2m-karras", SD);
        assertThat(karras.config().useKarrasSigmas()).isTrue();
        assertThat(Schedulers.create("dpm++2m", SD).config().useKarrasSigmas()).isFalse();
        assertThat(karras.plan(10).sigmas()).isNotEqualTo(Schedulers.create("dpm++2m", SD).plan(10).sigmas());
    }

    @Test
    void unknownNameListsTheKnownOnes() {
        assertThatThrownBy(() -> Schedulers.create("pndm", SD)).hasMessageContaining("pndm").hasMessageContaining("ddim");
    }

    @Test
    void aSchedulerOfTheOtherKindIsRefusedWithTheOnesThatFit() {
        assertThat(Schedulers.namesFor(ModelKind.FLOW_MATCHING)).containsExactly("flow-euler");
        assertThat(Schedulers.namesFor(ModelKind.DIFFUSION)).containsExactly("ddim", "euler", "euler-a", "dpm++2m",
                "dpm++2m-karras");
        assertThatThrownBy(() -> Schedulers.create("flow-euler", SD, ModelKind.DIFFUSION))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("flow-matching")
                .hasMessageContaining("ddim, euler, euler-a, dpm++2m, dpm++2m-karras");
        assertThatThrownBy(() -> Schedulers.create("Euler", SchedulerConfig.stableDiffusion3(), ModelKind.FLOW_MATCHING))
                .hasMessageContaining("'Euler'").hasMessageEndingWith("choose one of flow-euler");
        assertThat(Schedulers.create("DPM++2M-Karras", SD, ModelKind.DIFFUSION)).isInstanceOf(DpmSolverMultistepScheduler.class);
    }
}
