package dev.sdrt.enginebuilder;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Turns an {@link EngineBuildRequest} into the min/opt/max shape of every input of a model.
 *
 * <p>A dimension the ONNX graph fixes keeps its size. A dynamic one gets a range, decided in this
 * order:
 * <ol>
 *   <li>an explicit override in the request, by "input:axis" then by symbolic dimension name;
 *   <li>the symbolic name sdrt's exporter gives it: {@code batch}, {@code height}, {@code width},
 *       {@code sequence} (and a few common spellings, see {@link #DIM_NAME_ROLES});
 *   <li>the input's name, by the conventions of diffusers models and the fixtures ({@link #INPUT_ROLES}):
 *       <pre>
 *       sample, latent_sample, hidden_states [B, C, H, W]   UNet, VAE decoder, SD3 transformer
 *       timestep                             [B]
 *       encoder_hidden_states                [B, T, C]
 *       text_embeds, pooled_projections      [B, C]         SDXL, SD3 pooled text
 *       time_ids                             [B, 6]         SDXL
 *       input_ids, attention_mask            [B, T]         CLIP text encoder
 *       </pre>
 *       where B takes the request's batch, H and W its height and width, T its tokens.
 * </ol>
 * Anything else (a dynamic channel count, an unknown input) is an error that lists every unresolved
 * dimension and how to give it a size.
 */
public final class ProfileDeriver {

    /** What a dimension means, and so which request range it takes. */
    enum Role {
        BATCH, HEIGHT, WIDTH, TOKENS
    }

    private static final Role B = Role.BATCH;
    private static final Role H = Role.HEIGHT;
    private static final Role W = Role.WIDTH;
    private static final Role T = Role.TOKENS;

    /** Per-axis roles by input name; null marks an axis (channels, embedding width) with no request range. */
    static final Map<String, Role[]> INPUT_ROLES = Map.ofEntries(
            Map.entry("sample", new Role[] {B, null, H, W}),
            Map.entry("latent_sample", new Role[] {B, null, H, W}),
            Map.entry("hidden_states", new Role[] {B, null, H, W}),
            Map.entry("latents", new Role[] {B, null, H, W}),
            Map.entry("timestep", new Role[] {B}),
            Map.entry("timesteps", new Role[] {B}),
            Map.entry("encoder_hidden_states", new Role[] {B, T, null}),
            Map.entry("text_embeds", new Role[] {B, null}),
            Map.entry("pooled_projections", new Role[] {B, null}),
            Map.entry("time_ids", new Role[] {B, null}),
            Map.entry("input_ids", new Role[] {B, T}),
            Map.entry("attention_mask", new Role[] {B, T}));

    /** Roles by symbolic dimension name (lower-cased). */
    static final Map<String, Role> DIM_NAME_ROLES = Map.ofEntries(
            Map.entry("batch", B), Map.entry("batch_size", B), Map.entry("n", B),
            Map.entry("height", H), Map.entry("latent_height", H), Map.entry("h", H),
            Map.entry("width", W), Map.entry("latent_width", W), Map.entry("w", W),
            Map.entry("sequence", T), Map.entry("sequence_length", T), Map.entry("seq_len", T),
            Map.entry("tokens", T));

    private ProfileDeriver() {}

    /**
     * The profile for {@code inputs} under {@code request}.
     *
     * @throws ProfileException naming every dynamic dimension that no rule resolves
     */
    public static ShapeProfile derive(List<ModelTensor> inputs, EngineBuildRequest request) {
        Map<String, InputShapes> shapes = new LinkedHashMap<>();
        List<String> notes = new ArrayList<>();
        List<String> unresolved = new ArrayList<>();
        for (ModelTensor input : inputs) {
            int rank = input.rank();
            long[] min = new long[rank];
            long[] opt = new long[rank];
            long[] max = new long[rank];
            for (int axis = 0; axis < rank; axis++) {
                Role role = roleByName(input, axis);
                if (!input.isDynamic(axis)) {
                    long size = input.shape()[axis];
                    min[axis] = opt[axis] = max[axis] = size;
                    DimRange asked = role == null ? null : rangeFor(role, request);
                    if (asked != null && (size < asked.min() || size > asked.max())) {
                        notes.add(String.format("input '%s' axis %d (%s) is fixed at %d in the graph; the requested %s %s does not apply",
                                input.name(), axis, role.name().toLowerCase(Locale.ROOT), size,
                                role.name().toLowerCase(Locale.ROOT), asked));
                    }
                    continue;
                }
                DimRange range = override(input, axis, request);
                if (range == null && role != null) {
                    range = rangeFor(role, request);
                }
                if (range == null) {
                    unresolved.add(describeUnresolved(input, axis));
                    continue;
                }
                if (request.staticShapes()) {
                    range = range.atOpt();
                }
                min[axis] = range.min();
                opt[axis] = range.opt();
                max[axis] = range.max();
            }
            shapes.put(input.name(), new InputShapes(min, opt, max));
        }
        if (!unresolved.isEmpty()) {
            throw new ProfileException("cannot derive an optimization profile for " + request.onnx().getFileName()
                    + ": " + String.join("; ", unresolved)
                    + ". sdrt sizes a dynamic dimension from its symbolic name (batch, height, width, sequence) or"
                    + " from the input's name (sample/latent_sample/hidden_states [B,C,H,W], timestep [B],"
                    + " encoder_hidden_states [B,T,C], text_embeds/pooled_projections/time_ids [B,C],"
                    + " input_ids [B,T]); for anything else give the range explicitly with"
                    + " EngineBuildRequest.Builder.dim(\"NAME\" or \"INPUT:AXIS\", range)");
        }
        return new ShapeProfile(shapes, notes);
    }

    private static String describeUnresolved(ModelTensor input, int axis) {
        String dimName = input.dimNames().get(axis);
        return String.format("input '%s' (%s) has dynamic dimension %d%s with no rule to size it (key '%s:%d'%s)",
                input.name(), input.describe(), axis, dimName.isEmpty() ? "" : " ('" + dimName + "')",
                input.name(), axis, dimName.isEmpty() ? "" : " or '" + dimName + "'");
    }

    private static DimRange override(ModelTensor input, int axis, EngineBuildRequest request) {
        DimRange byAxis = request.dimOverrides().get(input.name() + ":" + axis);
        if (byAxis != null) {
            return byAxis;
        }
        String dimName = input.dimNames().get(axis);
        return dimName.isEmpty() ? null : request.dimOverrides().get(dimName);
    }

    /** The role of an axis: from its symbolic name first, then from the input's name and rank. */
    static Role roleByName(ModelTensor input, int axis) {
        String dimName = input.dimNames().get(axis).toLowerCase(Locale.ROOT);
        Role byDimName = DIM_NAME_ROLES.get(dimName);
        if (byDimName != null) {
            return byDimName;
        }
        Role[] roles = INPUT_ROLES.get(input.name());
        if (roles != null && roles.length == input.rank()) {
            return roles[axis];
        }
        return null;
    }

    private static DimRange rangeFor(Role role, EngineBuildRequest request) {
        return switch (role) {
            case BATCH -> request.batch();
            case HEIGHT -> request.height();
            case WIDTH -> request.width();
            case TOKENS -> request.tokens();
        };
    }
}
