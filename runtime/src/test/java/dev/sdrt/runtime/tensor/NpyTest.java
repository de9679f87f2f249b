package dev.sdrt.runtime.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sdrt.runtime.Fixtures;
import dev.sdrt.runtime.ForkedJvm;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NpyTest {

    @TempDir
    Path temp;

    /** Shapes of every component fixture's array (the tiny_* folders), as testdata/README.md lists them. */
    private static final Map<String, long[]> FIXTURE_SHAPES = new TreeMap<>(Map.ofEntries(
            Map.entry("tiny_sd_unet/in_sample.npy", new long[] {2, 4, 16, 16}),
            Map.entry("tiny_sd_unet/in_timestep.npy", new long[] {2}),
            Map.entry("tiny_sd_unet/in_encoder_hidden_states.npy", new long[] {2, 8, 32}),
            Map.entry("tiny_sd_unet/out_out_sample.npy", new long[] {2, 4, 16, 16}),
            Map.entry("tiny_sdxl_unet/in_sample.npy", new long[] {2, 4, 16, 16}),
            Map.entry("tiny_sdxl_unet/in_timestep.npy", new long[] {2}),
            Map.entry("tiny_sdxl_unet/in_encoder_hidden_states.npy", new long[] {2, 8, 64}),
            Map.entry("tiny_sdxl_unet/in_text_embeds.npy", new long[] {2, 32}),
            Map.entry("tiny_sdxl_unet/in_time_ids.npy", new long[] {2, 6}),
            Map.entry("tiny_sdxl_unet/out_out_sample.npy", new long[] {2, 4, 16, 16}),
            Map.entry("tiny_vae_decoder/in_latent_sample.npy", new long[] {1, 4, 16, 16}),
            Map.entry("tiny_vae_decoder/out_sample.npy", new long[] {1, 3, 32, 32}),
            Map.entry("tiny_clip_text/in_input_ids.npy", new long[] {1, 77}),
            Map.entry("tiny_clip_text/out_last_hidden_state.npy", new long[] {1, 77, 32}),
            Map.entry("tiny_clip_text/out_pooler_output.npy", new long[] {1, 32}),
            Map.entry("tiny_sd3_transformer/in_hidden_states.npy", new long[] {2, 4, 16, 16}),
            Map.entry("tiny_sd3_transformer/in_encoder_hidden_states.npy", new long[] {2, 12, 32}),
            Map.entry("tiny_sd3_transformer/in_pooled_projections.npy", new long[] {2, 64}),
            Map.entry("tiny_sd3_transformer/in_timestep.npy", new long[] {2}),
            Map.entry("tiny_sd3_transformer/out_sample.npy", new long[] {2, 4, 16, 16})));

    // ---- numpy's own files ----

    @Test
    void readsEveryFixtureWithTheDocumentedShape() throws IOException {
        assertThat(componentFixtureArrays()).as("README lists every .npy of the component fixtures")
                .containsExactlyInAnyOrderElementsOf(FIXTURE_SHAPES.keySet());
        for (Map.Entry<String, long[]> entry : FIXTURE_SHAPES.entrySet()) {
            Tensor tensor = Npy.read(Fixtures.dir().resolve(entry.getKey()));
            assertThat(tensor.shape()).as(entry.getKey()).containsExactly(entry.getValue());
            DType expected = entry.getKey().endsWith("input_ids.npy") ? DType.INT64 : DType.FLOAT32;
            assertThat(tensor.dtype()).as(entry.getKey()).isEqualTo(expected);
        }
    }

    /** Values as numpy reads them (checked with np.load), which pins byte order and data offset. */
    @Test
    void fixtureValuesMatchNumpy() throws IOException {
        long[] ids = Npy.read(Fixtures.dir().resolve("tiny_clip_text/in_input_ids.npy")).toLongArray();
        assertThat(Arrays.copyOf(ids, 6)).containsExactly(545, 590, 419, 522, 857, 650);
        assertThat(Arrays.copyOfRange(ids, 74, 77)).containsExactly(118, 435, 185);
        float[] sample = Npy.read(Fixtures.dir().resolve("tiny_sd_unet/in_sample.npy")).toFloatArray();
        assertThat(Arrays.copyOf(sample, 3)).containsExactly(-0x1.3973b4p-2f, -0x1.7681bep-1f, -0x1.67f06cp-1f);
        assertThat(sample[sample.length - 1]).isEqualTo(0x1.05fac0p-2f);
    }

    /** Writing back what was read gives numpy's file byte for byte: header, padding and data. */
    @Test
    void rewritingEveryFixtureGivesTheIdenticalFile() throws IOException {
        for (String name : FIXTURE_SHAPES.keySet()) {
            Path original = Fixtures.dir().resolve(name);
            Path copy = temp.resolve(name.replace('/', '_'));
            Npy.write(copy, Npy.read(original));
            assertThat(Files.readAllBytes(copy)).as(name).isEqualTo(Files.readAllBytes(original));
        }
    }

    /** Files written by np.save (numpy 2.4), embedded so that the test needs no Python. */
    @Test
    void writesOtherDtypesExactlyAsNumpyDoes() throws IOException {
        Tensor float16 = Tensor.ofFloats(new long[] {3}, new float[] {1.5f, -2, 65504}).castTo(DType.FLOAT16);
        assertWrittenAs(float16, "k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzog"
                + "KDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAPgDA/3s=");

        Tensor bool = Tensor.allocate(DType.BOOL, 2, 2);
        bool.buffer().put(new byte[] {1, 0, 0, 1});
        assertWrittenAs(bool, "k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIs"
                + "IDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAB");

        Tensor uint8Scalar = Tensor.allocate(DType.UINT8);
        uint8Scalar.buffer().put((byte) 7);
        assertWrittenAs(uint8Scalar, "k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBl"
                + "JzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoH");

        assertWrittenAs(Tensor.zeros(DType.INT32, 0, 3), "k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXIn"
                + "OiBGYWxzZSwgJ3NoYXBlJzogKDAsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg"
                + "ICAgICAgIAo=");

        Tensor int8 = Tensor.allocate(DType.INT8, 2);
        int8.buffer().put(new byte[] {-128, 127});
        assertWrittenAs(int8, "k05VTVBZAQB2AHsnZGVzY3InOiAnfGkxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIs"
                + "KSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqAfw==");

        Tensor float64 = Tensor.allocate(DType.FLOAT64, 1);
        float64.buffer().putDouble(Math.PI);
        assertWrittenAs(float64, "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzog"
                + "KDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoYLURU+yEJQA==");
    }

    private void assertWrittenAs(Tensor tensor, String numpyFileBase64) throws IOException {
        byte[] numpyFile = Base64.getDecoder().decode(numpyFileBase64);
        Path written = temp.resolve("written.npy");
        Npy.write(written, tensor);
        assertThat(Files.readAllBytes(written)).as(tensor.toString()).isEqualTo(numpyFile);

        Path numpys = temp.resolve("numpy.npy");
        Files.write(numpys, numpyFile);
        Tensor read = Npy.read(numpys);
        assertThat(read.dtype()).isEqualTo(tensor.dtype());
        assertThat(read.shape()).isEqualTo(tensor.shape());
        assertThat(read.buffer()).isEqualTo(tensor.buffer());
    }

    // ---- round trips ----

    @Test
    void roundTripsEveryDtypeThatNumpyHas() throws IOException {
        for (DType dtype : DType.values()) {
            if (dtype.numpyDescr().isEmpty()) {
                continue;
            }
            Tensor tensor = Tensor.allocate(dtype, 2, 3, 5);
            ByteBuffer bytes = tensor.buffer();
            for (int i = 0; bytes.hasRemaining(); i++) {
                bytes.put(dtype == DType.BOOL ? (byte) (i % 2) : (byte) (i * 37));
            }
            Path file = temp.resolve(dtype + ".npy");
            Npy.write(file, tensor);
            Tensor read = Npy.read(file);
            assertThat(read.dtype()).isEqualTo(dtype);
            assertThat(read.shape()).containsExactly(2, 3, 5);
            assertThat(read.buffer()).as(dtype.toString()).isEqualTo(tensor.buffer());
            assertThat((Files.size(file) - tensor.byteSize()) % 64).as("data starts 64-byte aligned").isZero();
        }
    }

    @Test
    void bfloat16IsStoredAsRawBitsOnlyWhenAskedFor() throws IOException {
        Tensor bf16 = Tensor.ofFloats(new long[] {3}, new float[] {1f, -3.140625f, 1e30f}).castTo(DType.BFLOAT16);
        Path file = temp.resolve("bf16.npy");
        assertThatThrownBy(() -> Npy.write(file, bf16))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("numpy has no bfloat16 dtype")
                .hasMessageContaining("writeBfloat16AsUint16");

        Npy.writeBfloat16AsUint16(file, bf16);
        assertThat(headerText(Files.readAllBytes(file))).contains("'descr': '<u2'");
        Tensor read = Npy.readBfloat16FromUint16(file);
        assertThat(read.dtype()).isEqualTo(DType.BFLOAT16);
        assertThat(read.toFloatArray()).containsExactly(bf16.toFloatArray());
        assertThatThrownBy(() -> Npy.read(file))
                .isInstanceOf(NpyFormatException.class)
                .hasMessageContaining("unsupported dtype '<u2'");

        Path floats = temp.resolve("f4.npy");
        Npy.write(floats, Tensor.zeros(DType.FLOAT32, 1));
        assertThatThrownBy(() -> Npy.readBfloat16FromUint16(floats))
                .isInstanceOf(NpyFormatException.class)
                .hasMessageContaining(floats.toString())
                .hasMessageContaining("found '<f4'");
        assertThatThrownBy(() -> Npy.writeBfloat16AsUint16(floats, Tensor.zeros(DType.FLOAT16, 1)))
                .isInstanceOf(IllegalArgumentException.class);
    }

    /** A header longer than version 1.0's 16-bit length field moves to version 2.0, as in numpy. */
    @Test
    void writesVersion2WhenTheHeaderNeedsIt() throws IOException {
        long[] shape = new long[22_000];
        Arrays.fill(shape, 1);
        shape[0] = 2;
        Tensor tensor = Tensor.allocate(DType.FLOAT32, shape);
        tensor.buffer().putFloat(1.5f).putFloat(-1f);
        Path file = temp.resolve("v2.npy");
        Npy.write(file, tensor);
        byte[] bytes = Files.readAllBytes(file);
        assertThat(bytes[6]).as("major version").isEqualTo((byte) 2);
        Tensor read = Npy.read(file);
        assertThat(read.shape()).isEqualTo(shape);
        assertThat(read.toFloatArray()).containsExactly(1.5f, -1f);

        Npy.write(file, Tensor.zeros(DType.FLOAT32, 2));
        assertThat(Files.readAllBytes(file)[6]).as("small headers stay 1.0").isEqualTo((byte) 1);
    }

    @Test
    void writeReplacesAnExistingFileAndLeavesNoTemporaryFiles() throws IOException {
        Path file = temp.resolve("out.npy");
        Files.writeString(file, "old contents");
        Npy.write(file, Tensor.ofFloats(new long[] {1}, new float[] {3f}));
        assertThat(Npy.read(file).toFloatArray()).containsExactly(3f);
        try (Stream<Path> files = Files.list(temp)) {
            assertThat(files).containsExactly(file);
        }
    }

    @Test
    void writeIntoAMissingDirectoryFailsCleanly() {
        Path file = temp.resolve("no/such/dir/out.npy");
        assertThatThrownBy(() -> Npy.write(file, Tensor.zeros(DType.FLOAT32, 1)))
                .isInstanceOf(NoSuchFileException.class);
    }

    // ---- header parsing ----

    @Test
    void toleratesHeaderSpellingVariations() throws IOException {
        String[] headers = {
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
            "{'descr':'<f4','fortran_order':False,'shape':(2,2)}",
            "{ \"descr\" : \"<f4\" , \"fortran_order\" : False , \"shape\" : ( 2 , 2 , ) , }",
            "{'shape': (2, 2), 'fortran_order': False, 'descr': '<f4'}",
            "{\n  'descr': '<f4',\n  'fortran_order': False,\n  'shape': (2L, 2L),\n}",
        };
        for (String header : headers) {
            Path file = write(npyFile(1, header, floatBytes(1, 2, 3, 4)));
            Tensor tensor = Npy.read(file);
            assertThat(tensor.shape()).as(header).containsExactly(2, 2);
            assertThat(tensor.toFloatArray()).as(header).containsExactly(1, 2, 3, 4);
        }
    }

    @Test
    void readsScalarsOneDimensionalTuplesAndOneByteByteOrders() throws IOException {
        assertThat(Npy.read(write(npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", floatBytes(7))))
                .toFloatArray()).containsExactly(7);
        assertThat(Npy.read(write(npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
                floatBytes(7)))).shape()).containsExactly(1);
        for (String descr : new String[] {"|u1", "<u1", ">u1"}) {
            Tensor tensor = Npy.read(write(npyFile(1,
                    "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (1,)}", new byte[] {(byte) 200})));
            assertThat(tensor.dtype()).isEqualTo(DType.UINT8);
            assertThat(tensor.toLongArray()).containsExactly(200);
        }
    }

    @Test
    void readsVersions2And3() throws IOException {
        for (int major : new int[] {2, 3}) {
            Path file = write(npyFile(major, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                    longBytes(-1, 5)));
            assertThat(Npy.read(file).toLongArray()).as("version %d", major).containsExactly(-1, 5);
        }
    }

    // ---- errors ----

    @Test
    void badMagicNamesTheFile() throws IOException {
        Path file = write("PK\u0003\u0004 not numpy at all".getBytes(StandardCharsets.ISO_8859_1));
        assertThatThrownBy(() -> Npy.read(file))
                .isInstanceOf(NpyFormatException.class)
                .hasMessage(file + ": not a .npy file (it does not start with \\x93NUMPY)");
        Path empty = write(new byte[0]);
        assertThatThrownBy(() -> Npy.read(empty)).hasMessageContaining("not a .npy file");
        Path magicOnly = write(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'});
        assertThatThrownBy(() -> Npy.read(magicOnly))
                .hasMessage(magicOnly + ": truncated: the file ended while reading the format version");
    }

    @Test
    void missingFileIsNoSuchFile() {
        Path file = temp.resolve("absent.npy");
        assertThatThrownBy(() -> Npy.read(file))
                .isInstanceOf(NoSuchFileException.class)
                .hasMessageContaining(file.toString());
    }

    @Test
    void unsupportedVersion() throws IOException {
        byte[] bytes = npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", floatBytes(1));
        bytes[6] = 4;
        Path file = write(bytes);
        assertThatThrownBy(() -> Npy.read(file))
                .isInstanceOf(NpyFormatException.class)
                .hasMessageContaining("unsupported .npy format version 4.0");
    }

    @Test
    void unsupportedDtypes() throws IOException {
        assertReadFails("{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}", new byte[8],
                "unsupported dtype '<c8'; supported: '<f4' (float32), '<f2' (float16)");
        assertReadFails("{'descr': '<U3', 'fortran_order': False, 'shape': (1,)}", new byte[12],
                "unsupported dtype '<U3'");
        assertReadFails("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,)}",
                new byte[8], "unsupported dtype [('a', '<f4'), ('b', '<i4')]: structured dtypes are not supported");
    }

    @Test
    void bigEndianIsRefused() throws IOException {
        assertReadFails("{'descr': '>f4', 'fortran_order': False, 'shape': (1,)}", new byte[4],
                "dtype '>f4' is big-endian; only little-endian is supported");
    }

    @Test
    void fortranOrderIsRefused() throws IOException {
        assertReadFails("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2)}", new byte[16],
                "Fortran (column-major) order; only C order is supported");
    }

    @Test
    void truncatedAndOverlongData() throws IOException {
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", new byte[20],
                "truncated: float32 [2, 3] needs 24 data bytes, the file has 20 after the header");
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", new byte[12],
                "4 bytes follow the data of float32 [2] (8 bytes)");

        byte[] cutInHeader = Arrays.copyOf(
                npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", new byte[8]), 40);
        Path file = write(cutInHeader);
        assertThatThrownBy(() -> Npy.read(file)).hasMessageContaining("truncated: the file ended while reading the header");
    }

    /**
     * An 8 KB file whose header claims 2 GiB fails on the file size, before anything is allocated:
     * checked in a JVM whose direct memory could not hold the 2 GiB, since the test JVM's could, and
     * a reader that allocated first would fail there too, only later and with an OutOfMemoryError.
     */
    @Test
    void headerClaimingTwoGibibytesFailsBeforeAllocating() throws Exception {
        byte[] bytes = npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (536870911,), }", new byte[8064]);
        assertThat(bytes).hasSize(8192);
        Path file = write(bytes);
        assertThatThrownBy(() -> Npy.read(file))
                .isInstanceOf(NpyFormatException.class)
                .hasMessage(file + ": truncated: float32 [536870911] needs 2147483644 data bytes,"
                        + " the file has 8064 after the header");

        Path alone = Files.createDirectory(temp.resolve("two-gib-claim"));
        Files.copy(file, alone.resolve("claim.npy"));
        ForkedJvm.Result result = ForkedJvm.run(NpyFuzzTest.class, NpyFuzzTest.SMALL_HEAP, List.of(alone.toString()));
        assertThat(result.output()).isEqualTo("checked 1 files" + System.lineSeparator());
    }

    @Test
    void hugeAndOverflowingShapesAreRefusedByName() throws IOException {
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,)}", new byte[4],
                "truncated: float32 [1099511627776] needs 4398046511104 data bytes, the file has 4 after the header");
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483647, 2147483647)}", new byte[4],
                "float32 [2147483647, 2147483647] has more bytes than a 64-bit size can count");
        assertReadFails("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,)}", new byte[4],
                "float64 [4611686018427387904] has more bytes than a 64-bit size can count");
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': (3, -2)}", new byte[4],
                "float32 [3, -2] has a negative dimension -2 at axis 1");
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", new byte[4],
                "integer at offset 51 does not fit in 64 bits");
        String manyDimensions = "(" + "1, ".repeat(10_000) + "7)";
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': " + manyDimensions + "}", new byte[4],
                "truncated: float32 [1, 1, 1, 1, 1, 1, 1, 1, ... (10001 dimensions)] needs 28 data bytes");
    }

    @Test
    void headerLengthPastTheEndOfTheFile() throws IOException {
        byte[] bytes = npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", new byte[4]);
        bytes[8] = (byte) 0xff;
        bytes[9] = (byte) 0x7f;
        Path file = write(bytes);
        assertThatThrownBy(() -> Npy.read(file))
                .isInstanceOf(NpyFormatException.class)
                .hasMessage(file + ": truncated: the file ended while reading the header (its length field says"
                        + " 32767 bytes, 122 follow)");
    }

    @Test
    void messagesQuoteAtMostAnExcerptOfTheHeader() throws IOException {
        String longKey = "k".repeat(100_000);
        Path file = write(npyFile(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), '" + longKey + "': True}",
                new byte[4]));
        assertThatThrownBy(() -> Npy.read(file))
                .isInstanceOf(NpyFormatException.class)
                .hasMessageContaining("header has keys [descr, fortran_order, shape, kkk")
                .hasMessageContaining("... (100031 characters)")
                .satisfies(e -> assertThat(e.getMessage()).hasSizeLessThan(1_000));
        assertReadFails("{'descr': '" + "\u0001".repeat(3) + "x".repeat(500) + "', 'fortran_order': False, 'shape': (1,)}",
                new byte[4], "unsupported dtype '\\x01\\x01\\x01xxx");
        assertReadFails("{'descr': (1, 2), 'fortran_order': False, 'shape': (1,)}", new byte[4],
                "descr is not a dtype string");
    }

    @Test
    void headerTooLong() throws IOException {
        ByteBuffer prefix = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        prefix.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 2).put((byte) 0)
                .putInt(Integer.MAX_VALUE);
        Path file = write(prefix.array());
        assertThatThrownBy(() -> Npy.read(file))
                .isInstanceOf(NpyFormatException.class)
                .hasMessageStartingWith(file.toString())
                .hasMessageContaining("header of 2147483647 bytes is too long");
    }

    @Test
    void malformedHeaders() throws IOException {
        assertReadFails("{'descr': '<f4', 'shape': (1,)}", new byte[4],
                "header has keys [descr, shape], expected exactly descr, fortran_order and shape");
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': True}", new byte[4],
                "expected exactly descr, fortran_order and shape");
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", new byte[4],
                "cannot parse header");
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}", new byte[4],
                "cannot parse header");
        assertReadFails("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", new byte[4],
                "cannot parse header");
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': 'x'}", new byte[4],
                "shape is not a tuple of integers");
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", new byte[4],
                "negative dimension");
        assertReadFails("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk", new byte[4],
                "unexpected text after the closing brace");
    }

    private void assertReadFails(String header, byte[] data, String expectedMessagePart) throws IOException {
        Path file = write(npyFile(1, header, data));
        assertThatThrownBy(() -> Npy.read(file))
                .as(header)
                .isInstanceOf(NpyFormatException.class)
                .hasMessageStartingWith(file + ": ")
                .hasMessageContaining(expectedMessagePart);
    }

    // ---- helpers ----

    private int fileCount;

    private Path write(byte[] bytes) throws IOException {
        return Files.write(temp.resolve("case" + fileCount++ + ".npy"), bytes);
    }

    /** A .npy file with the given header text, padded the way numpy pads it. */
    private static byte[] npyFile(int major, String header, byte[] data) {
        int lengthFieldSize = major == 1 ? 2 : 4;
        StringBuilder padded = new StringBuilder(header);
        while ((8 + lengthFieldSize + padded.length() + 1) % 64 != 0) {
            padded.append(' ');
        }
        padded.append('\n');
        byte[] headerBytes = padded.toString().getBytes(StandardCharsets.ISO_8859_1);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0x93);
        out.writeBytes("NUMPY".getBytes(StandardCharsets.US_ASCII));
        out.write(major);
        out.write(0);
        ByteBuffer length = ByteBuffer.allocate(lengthFieldSize).order(ByteOrder.LITTLE_ENDIAN);
        if (lengthFieldSize == 2) {
            length.putShort((short) headerBytes.length);
        } else {
            length.putInt(headerBytes.length);
        }
        out.writeBytes(length.array());
        out.writeBytes(headerBytes);
        out.writeBytes(data);
        return out.toByteArray();
    }

    private static byte[] floatBytes(float... values) {
        ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float value : values) {
            buffer.putFloat(value);
        }
        return buffer.array();
    }

    private static byte[] longBytes(long... values) {
        ByteBuffer buffer = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (long value : values) {
            buffer.putLong(value);
        }
        return buffer.array();
    }

    private static String headerText(byte[] npyFile) {
        return new String(npyFile, 10, npyFile.length - 10, StandardCharsets.ISO_8859_1);
    }

    /** The .npy files of the tiny_* component fixtures (the pipe_* pipelines have their own test). */
    private static List<String> componentFixtureArrays() throws IOException {
        try (Stream<Path> files = Files.walk(Fixtures.dir())) {
            return files.filter(path -> path.toString().endsWith(".npy"))
                    .map(path -> Fixtures.dir().relativize(path).toString().replace('\\', '/'))
                    .filter(name -> name.startsWith("tiny_"))
                    .toList();
        }
    }
}
