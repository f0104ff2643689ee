# The fused floating type every kernel is written over: float32 and float64.
ctypedef fused floating:
    float
    double
