package dev.sdrt.exporter;

import dev.sdrt.graphs.ir.DataType;

/**
 * How to export a component.
 *
 * @param precision      FLOAT (default), FLOAT16 or BFLOAT16: the type of weights and activations
 * @param staticShapes   fix batch, spatial size and sequence length to the values below instead of
 *                       symbolic axes ("batch", "height", "width", "sequence")
 * @param batch          static batch size
 * @param height         static height in the component's own input units (latent pixels for a UNet
 *                       or VAE decoder, image pixels for a VAE encoder)
 * @param width          static width, likewise
 * @param sequenceLength static text length (77 for CLIP)
 * @param penultimateHiddenState give a plain CLIPTextModel the {@code hidden_states_penultimate} output too (SDXL's
 *                       first text encoder); CLIPTextModelWithProjection always has it
 */
public record ExportOptions(DataType precision, boolean staticShapes, long batch, long height, long width, long sequenceLength,
        boolean penultimateHiddenState) {

    public static ExportOptions defaults() {
        return new ExportOptions(DataType.FLOAT, false, 1, 64, 64, 77, false);
    }

    public ExportOptions withPrecision(DataType type) {
        return new ExportOptions(type, staticShapes, batch, height, width, sequenceLength, penultimateHiddenState);
    }

    public ExportOptions withStaticShapes(long batch, long height, long width, long sequenceLength) {
        return new ExportOptions(precision, true, batch, height, width, sequenceLength, penultimateHiddenState);
    }

    public ExportOptions withPenultimateHiddenState(boolean penultimate) {
        return new ExportOptions(precision, staticShapes, batch, height, width, sequenceLength, penultimate);
    }

    /** The batch axis: a number when static, else the symbol "batch". */
    public Object batchDim() {
        return staticShapes ? (Object) batch : "batch";
    }

    public Object heightDim() {
        return staticShapes ? (Object) height : "height";
    }

    public Object widthDim() {
        return staticShapes ? (Object) width : "width";
    }

    public Object sequenceDim() {
        return staticShapes ? (Object) sequenceLength : "sequence";
    }

    /** A static dimension scaled by {@code factor}, or a derived symbolic name. */
    public Object scaled(Object dim, double factor, String suffix) {
        return dim instanceof Long l ? (Object) (long) Math.round(l * factor) : dim + suffix;
    }
}
