package dev.sdrt.runtime.trt;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class KernelClassTest {

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
        "sm90_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc_tilesize128x128x64_cga1x1x1; convolution; fp16",
        "sm80_xmma_fprop_implicit_gemm_interleaved_i8i8_i8i32_f32_nchw_vect_c_32kcrs_vect_c_32; convolution; int8",
        "sm90_xmma_gemm_e4m3e4m3_e4m3f32_f32_tn_n_tilesize128x128x128_cga1x1x1; matmul; fp8",
        "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64; matmul; bf16",
        "sm90_xmma_gemm_tf32f32_tf32f32_f32_tn_n_tilesize128x128x32; matmul; tf32",
        "sm80_xmma_gemm_f32f32_f32f32_f32_nn_n_tilesize64x64x8; matmul; fp32",
        "fmha_v2_flash_attention_fp16_64_64_S_qkv_128_sm90_kernel_nl; attention; fp16",
        "_gemm_mha_v2_fp8_sm90; attention; fp8",
        "__myl_AddMulSigmoidMul_0x4f2a; pointwise/fused; ''",
        "void genericReformat::copyPackedKernel<float, __half, true>(unsigned int); reformat/copy; fp16",
        "void cuInstanceNormalizationFwd<__half>(int); normalization; fp16",
        "void cask_cudnn::computeOffsetsKernel<false, false>(cask_cudnn::ComputeOffsetsParams); other; ''",
    })
    void namesTellWhatAKernelDoesAndInWhichType(String name, String category, String precision) {
        KernelClass kind = KernelClass.ofKernel(name);
        assertEquals(category, kind.category(), name);
        assertEquals(precision, kind.precision(), name);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
        "convolution; int8; convolution int8",
        "pointwise/fused; ''; pointwise/fused",
    })
    void labelJoinsCategoryAndKnownPrecision(String category, String precision, String label) {
        assertEquals(label, new KernelClass(category, precision).label());
    }
}
