/* gemm_ukernel_undef.h: undefines the parameter macros of one gemm_ukernel_tmpl.h instance, so
 * the next instance can define its own (see gemm_kernels.h). No include guard, by design. */
#undef UK_SFX
#undef UK_ATTR
#undef UK_T
#undef UK_V
#undef UK_VL
#undef UK_MR
#undef UK_NV
#undef UK_EPI
#undef UK_ZERO
#undef UK_SET1
#undef UK_LOADU
#undef UK_STOREU
#undef UK_FMADD
#undef UK_MUL
#undef UK_ADD
#undef UK_HAS_MASK
#undef UK_MASK_T
#undef UK_MASK
#undef UK_MASK_LOADZ
#undef UK_MASK_STORE
#undef UK_NR
#undef UK_FN
#undef UK_TRB
#undef UK_TRANSPOSE
#undef UK_RELU
#undef UK_ACT_ROWS
