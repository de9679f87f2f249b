package dev.sdrt.cli;

import static dev.sdrt.cli.CliTest.sdrt;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sdrt.exporter.Exporter;
import dev.sdrt.graphs.passes.PassPipeline;
import dev.sdrt.runtime.scheduler.Schedulers;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;

/** Every command's help: whole sentences, a description for every option, lists that follow the registries. */
class HelpTest {

    private static List<CommandSpec> commands() {
        List<CommandSpec> all = new ArrayList<>();
        CommandSpec root = new CommandLine(new SdrtMain()).getCommandSpec();
        all.add(root);
        root.subcommands().values().forEach(sub -> all.add(sub.getCommandSpec()));
        return all;
    }

    @Test
    void everyOptionAndParameterOfEveryCommandHasADescription() {
        List<String> undescribed = new ArrayList<>();
        for (CommandSpec command : commands()) {
            List<ArgSpec> args = new ArrayList<>(command.options());
            args.addAll(command.positionalParameters());
            for (ArgSpec arg : args) {
                if (String.join(" ", arg.description()).isBlank()) {
                    undescribed.add(command.qualifiedName() + " " + (arg.isOption() ? ((CommandLine.Model.OptionSpec) arg).longestName()
                            : arg.paramLabel()));
                }
            }
        }
        assertThat(undescribed).isEmpty();
    }

    @Test
    void theCommandListShowsWholeSentences() {
        // The top-level list shows the first line of each description, so that line must end a sentence.
        for (CommandSpec command : commands()) {
            String[] description = command.usageMessage().description();
            assertThat(description).as(command.qualifiedName()).isNotEmpty();
            assertThat(description[0].strip()).as(command.qualifiedName()).endsWith(".");
        }
    }

    @Test
    void optimizeListsEveryRegisteredPassOnALineOfItsOwn() {
        CliTest.Result r = sdrt("optimize", "--help");
        assertThat(r.code()).isZero();
        for (String pass : PassPipeline.registeredPasses()) {
            assertThat(r.out()).as(pass).containsPattern("(?m)^  " + Pattern.quote(pass) + " +\\S");
        }
        assertThat(r.out()).contains("skip=REGEX").contains("skip-defaults=false");
    }

    @Test
    void architectureAndSchedulerListsFollowTheRegistries() {
        for (String command : List.of("export", "export-pipeline", "bench")) {
            String help = sdrt(command, "--help").out().replaceAll("\\s+", " ");
            for (String arch : Exporter.ARCHITECTURES) {
                assertThat(help).as(command).containsPattern("[ :,]" + Pattern.quote(arch) + "[,) ]");
            }
        }
        for (String command : List.of("generate", "bench", "calibrate")) {
            String help = sdrt(command, "--help").out();
            for (String scheduler : Schedulers.NAMES) {
                assertThat(help).as(command).contains(scheduler);
            }
        }
    }

    @Test
    void helpHasNoColourWhenNotOnATerminal() {
        assertThat(sdrt("--help").out()).doesNotContain("\u001b");
        assertThat(sdrt("generate", "--help").out()).doesNotContain("\u001b");
    }
}
