"""nncore's optional CUDA kernels: CUDA C++ sources (*.cu, C API in nncore_cuda.h) compiled by
setup.py only when NNCORE_CUDA=1 and nvcc is found, into the `_ext` extension.

Importing this package never imports `_ext` (nor anything CUDA); use `nncore.cuda`.
"""
