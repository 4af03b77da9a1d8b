/* SPDX-License-Identifier: MIT */
/*
 * RK3588 NPU register offsets and the fields this library writes. Offsets and bit positions are
 * those of the kernel's drivers/accel/rocket/rocket_registers.h (Linux 7.2.13, generated from
 * Mesa's registers.xml); every field, its value and its source are listed in docs/npu-registers.md.
 * Written from that documentation, not copied.
 */
#ifndef NPU_REGS_H
#define NPU_REGS_H

/* regcmd word: target block [63:48], value [47:16], register offset [15:0]. */
#define NPU_TARGET_PC 0x0100u
#define NPU_TARGET_CNA 0x0200u
#define NPU_TARGET_CORE 0x0800u
#define NPU_TARGET_DPU 0x1000u
#define NPU_TARGET_DPU_RDMA 0x2000u
/* Ordinary register writes carry block | 1 (Mesa rkt_regcmd.c emit()). */
#define NPU_TARGET_WRITE_BIT 0x0001u
/* Tail: "64'h0041_xxxx must precede op_en" (TRM), then op_en with bit 55 (0x0080) set. */
#define NPU_TARGET_TAIL_MARKER 0x0041u
#define NPU_TARGET_OP_ENABLE 0x0081u

/* Units started by the op_en word (GLOBAL_OPERATION_ENABLE layout, TRM / registers.xml):
 * CNA bit 0, CORE bit 2, DPU bit 3, DPU_RDMA bit 4, PPU bit 5, PPU_RDMA bit 6. */
#define NPU_OPEN_CNA 0x01u
#define NPU_OPEN_CORE 0x04u
#define NPU_OPEN_DPU 0x08u
#define NPU_OPEN_DPU_RDMA 0x10u
#define NPU_OPEN_GEMM (NPU_OPEN_CNA | NPU_OPEN_CORE | NPU_OPEN_DPU) /* 0x0d as in [X]; no RDMA operand */

/* PC */
#define REG_PC_OPERATION_ENABLE 0x0008u
#define REG_PC_BASE_ADDRESS 0x0010u
#define REG_PC_REGISTER_AMOUNTS 0x0014u

/* CNA */
#define REG_CNA_CONV_CON1 0x100cu
#define REG_CNA_CONV_CON2 0x1010u
#define REG_CNA_CONV_CON3 0x1014u
#define REG_CNA_DATA_SIZE0 0x1020u
#define REG_CNA_DATA_SIZE1 0x1024u
#define REG_CNA_DATA_SIZE2 0x1028u
#define REG_CNA_DATA_SIZE3 0x102cu
#define REG_CNA_WEIGHT_SIZE0 0x1030u
#define REG_CNA_WEIGHT_SIZE1 0x1034u
#define REG_CNA_WEIGHT_SIZE2 0x1038u
#define REG_CNA_CBUF_CON0 0x1040u
#define REG_CNA_CBUF_CON1 0x1044u
#define REG_CNA_CVT_CON0 0x104cu
#define REG_CNA_CVT_CON1 0x1050u
#define REG_CNA_CVT_CON2 0x1054u
#define REG_CNA_CVT_CON3 0x1058u
#define REG_CNA_CVT_CON4 0x105cu
#define REG_CNA_FC_CON0 0x1060u
#define REG_CNA_FC_CON1 0x1064u
#define REG_CNA_PAD_CON0 0x1068u
#define REG_CNA_FEATURE_DATA_ADDR 0x1070u
#define REG_CNA_FC_CON2 0x1074u
#define REG_CNA_DMA_CON0 0x1078u
#define REG_CNA_DMA_CON1 0x107cu
#define REG_CNA_DMA_CON2 0x1080u
#define REG_CNA_FC_DATA_SIZE0 0x1084u
#define REG_CNA_FC_DATA_SIZE1 0x1088u
#define REG_CNA_DCOMP_CTRL 0x1100u
#define REG_CNA_DCOMP_REGNUM 0x1104u
#define REG_CNA_DCOMP_ADDR0 0x1110u
#define REG_CNA_DCOMP_AMOUNT0 0x1140u /* ..AMOUNT15 at 0x117c, stride 4 */
#define REG_CNA_CVT_CON5 0x1180u
#define REG_CNA_PAD_CON1 0x1184u

/* CORE */
#define REG_CORE_MISC_CFG 0x3010u
#define REG_CORE_DATAOUT_SIZE_0 0x3014u
#define REG_CORE_DATAOUT_SIZE_1 0x3018u
#define REG_CORE_CLIP_TRUNCATE 0x301cu
#define REG_CORE_UNDOCUMENTED_3030 0x3030u /* written 0 by Mesa and [X]; not in registers.xml */

/* DPU */
#define REG_DPU_S_POINTER 0x4004u
#define REG_DPU_FEATURE_MODE_CFG 0x400cu
#define REG_DPU_DATA_FORMAT 0x4010u
#define REG_DPU_OFFSET_PEND 0x4014u
#define REG_DPU_DST_BASE_ADDR 0x4020u
#define REG_DPU_DST_SURF_STRIDE 0x4024u
#define REG_DPU_DATA_CUBE_WIDTH 0x4030u
#define REG_DPU_DATA_CUBE_HEIGHT 0x4034u
#define REG_DPU_DATA_CUBE_NOTCH_ADDR 0x4038u
#define REG_DPU_DATA_CUBE_CHANNEL 0x403cu
#define REG_DPU_BS_CFG 0x4040u
#define REG_DPU_BS_ALU_CFG 0x4044u
#define REG_DPU_BS_MUL_CFG 0x4048u
#define REG_DPU_BS_RELUX_CMP_VALUE 0x404cu
#define REG_DPU_BS_OW_CFG 0x4050u
#define REG_DPU_BS_OW_OP 0x4054u
#define REG_DPU_WDMA_SIZE_0 0x4058u
#define REG_DPU_WDMA_SIZE_1 0x405cu
#define REG_DPU_BN_CFG 0x4060u
#define REG_DPU_BN_ALU_CFG 0x4064u
#define REG_DPU_BN_MUL_CFG 0x4068u
#define REG_DPU_BN_RELUX_CMP_VALUE 0x406cu
#define REG_DPU_EW_CFG 0x4070u
#define REG_DPU_EW_CVT_OFFSET_VALUE 0x4074u
#define REG_DPU_EW_CVT_SCALE_VALUE 0x4078u
#define REG_DPU_EW_RELUX_CMP_VALUE 0x407cu
#define REG_DPU_OUT_CVT_OFFSET 0x4080u
#define REG_DPU_OUT_CVT_SCALE 0x4084u
#define REG_DPU_OUT_CVT_SHIFT 0x4088u
#define REG_DPU_EW_OP_VALUE_0 0x4090u /* ..VALUE_7 at 0x40ac */
#define REG_DPU_SURFACE_ADD 0x40c0u
#define REG_DPU_UNDOCUMENTED_40C4 0x40c4u /* written 0 by Mesa; not in registers.xml */
/* LUT_ACCESS_CFG, LUT_ACCESS_DATA, LUT_CFG, LUT_INFO, LUT_LE_START/END, LUT_LO_START/END,
 * LUT_LE_SLOPE_SCALE/SHIFT, LUT_LO_SLOPE_SCALE/SHIFT: consecutive from 0x4100. */
#define REG_DPU_LUT_ACCESS_CFG 0x4100u
#define NPU_DPU_LUT_REGISTERS 12u
/* DPU_RDMA: the DPU's operand reads (bias, batch-norm, element-wise), as Mesa's convolution writes them. */
#define REG_DPU_RDMA_S_POINTER 0x5004u
#define REG_DPU_RDMA_CUBE_WIDTH 0x500cu
#define REG_DPU_RDMA_CUBE_HEIGHT 0x5010u
#define REG_DPU_RDMA_CUBE_CHANNEL 0x5014u
#define REG_DPU_RDMA_SRC_BASE_ADDR 0x5018u
#define REG_DPU_RDMA_BRDMA_CFG 0x501cu
#define REG_DPU_RDMA_BS_BASE_ADDR 0x5020u
#define REG_DPU_RDMA_NRDMA_CFG 0x5028u
#define REG_DPU_RDMA_BN_BASE_ADDR 0x502cu
#define REG_DPU_RDMA_ERDMA_CFG 0x5034u
#define REG_DPU_RDMA_EW_BASE_ADDR 0x5038u
#define REG_DPU_RDMA_EW_SURF_STRIDE 0x5040u
#define REG_DPU_RDMA_FEATURE_MODE_CFG 0x5044u
#define REG_DPU_RDMA_SRC_DMA_CFG 0x5048u
#define REG_DPU_RDMA_SURF_NOTCH 0x504cu
#define REG_DPU_RDMA_PAD_CFG 0x5064u
#define REG_DPU_RDMA_WEIGHT 0x5068u
#define REG_DPU_RDMA_EW_SURF_NOTCH 0x506cu

/* Precision codes (CNA/CORE/DPU PROC/IN_PRECISION; DPU OUT_PRECISION). */
#define NPU_PREC_INT8 0u
#define NPU_PREC_FP16 2u
#define NPU_PREC_INT32 4u
#define NPU_PREC_FP32 5u

/* Field helpers for the values we compose. */
#define CNA_CONV_CON1_PROC_PRECISION(p) ((unsigned)(p) << 7)
#define CNA_CONV_CON1_IN_PRECISION(p) ((unsigned)(p) << 4)
#define CNA_CONV_CON2_FEATURE_GRAINS(g) (((unsigned)(g) & 0x3ffu) << 4)
#define CNA_CONV_CON3_STRIDE_1X1 ((1u << 3) | 1u)
#define CNA_CBUF_CON0(weight_bank, data_bank) ((((unsigned)(weight_bank) & 0xfu) << 4) | ((unsigned)(data_bank) & 0xfu))
#define CNA_CVT_CON0_SIGNED_BYPASS 0xbu /* DATA_SIGN | CVT_TYPE | CVT_BYPASS */
#define CNA_CVT_SCALE_ONE (1u << 16)
#define CNA_DMA_CON0_BURST16 ((15u << 16) | 15u)
#define CORE_MISC_CFG_PROC_PRECISION(p) ((unsigned)(p) << 8)
#define CORE_MISC_CFG_QD_EN 1u
#define DPU_S_POINTER_PP 0xeu /* POINTER_PP_MODE | EXECUTER_PP_EN | POINTER_PP_EN */
#define DPU_FEATURE_MODE_CFG_TO_MEMORY ((15u << 5) | (2u << 1)) /* BURST_LEN 15, OUTPUT_MODE 2 */
#define DPU_DATA_FORMAT(out, in, proc) (((unsigned)(out) << 29) | ((unsigned)(in) << 26) | (unsigned)(proc))
#define DPU_BYPASS_ALL_BS_BN 0x53u /* RELU_BYPASS | MUL_BYPASS | ALU_BYPASS | BYPASS */
#define DPU_BS_OW_CFG(size_e) ((((unsigned)(size_e) & 7u) << 8) | (((unsigned)(size_e) & 7u) << 5) | \
                               (((unsigned)(size_e) & 7u) << 2) | (1u << 1))
#define DPU_EW_CFG_BYPASS_ALL 0x383u /* RELU | OP_CVT | LUT bypass, OP_BYPASS, EW_BYPASS */
#define CNA_CBUF_CON0_WEIGHT_REUSE (1u << 13)
/* Mesa's requantized int8 convolution (rkt_regcmd.c): BS ALU_ALGO 2 (add) from ALU_SRC 1 (BRDMA), ReLU
 * and multiplier bypassed; BS_OW_CFG with OD not bypassed; BRDMA DATA_USE 1; ERDMA off; RDMA burst 15
 * with MRDMA off; E/N/B/M weights 1. */
#define DPU_BS_CFG_ADD_BIAS ((2u << 16) | (1u << 8) | (1u << 6) | (1u << 4))
#define DPU_BS_OW_CFG_OD(size_e) ((((unsigned)(size_e) & 7u) << 8) | (((unsigned)(size_e) & 7u) << 5) | \
                                  (((unsigned)(size_e) & 7u) << 2))
#define DPU_RDMA_BRDMA_CFG_DATA_USE_ALU (1u << 1)
#define DPU_RDMA_ERDMA_CFG_DISABLE 1u
#define DPU_RDMA_FEATURE_MODE_CFG_BIAS_ONLY ((15u << 11) | (1u << 4))
#define DPU_RDMA_WEIGHT_ONES 0x01010101u

#endif
