# cython: language_level=3
"""ops.h for Cython: the op codes, the optimizer configuration and each activation's scalar maths.

The codes and names are ops.h's alone; ``activate`` and ``derivative`` are its functions typed on
the fused ``floating``.
"""
from cython cimport floating

cdef extern from "ops.h" nogil:
    enum:
        NNCORE_ACTIVATION_IDENTITY
        NNCORE_ACTIVATION_RELU
        NNCORE_ACTIVATION_COUNT
        NNCORE_LOSS_CROSS_ENTROPY
        NNCORE_LOSS_MSE
        NNCORE_LOSS_COUNT
        NNCORE_OPTIMIZER_SGD
        NNCORE_OPTIMIZER_ADAM
        NNCORE_OPTIMIZER_RMSPROP
        NNCORE_OPTIMIZER_ADAMW
        NNCORE_OPTIMIZER_COUNT
        NNCORE_MAX_OPTIMIZER_STATES

    const char* nncore_activation_names[]
    const char* nncore_loss_names[]
    const char* nncore_optimizer_names[]
    const int nncore_optimizer_states[]

    struct nncore_optimizer_config:
        int kind
        double lr
        double momentum
        int nesterov
        double weight_decay
        double beta1
        double beta2
        double eps
        double alpha
        int centered
        long long steps_taken

    bint nncore_activation_reads_input(int activation)
    float nncore_activate_f32(int activation, float z)
    double nncore_activate_f64(int activation, double z)
    float nncore_derivative_f32(int activation, float x)
    double nncore_derivative_f64(int activation, double x)

ctypedef nncore_optimizer_config OptimizerConfig


cdef inline floating activate(int activation, floating z) noexcept nogil:
    """f(z) (ops.h)."""
    if floating is float:
        return nncore_activate_f32(activation, z)
    else:
        return nncore_activate_f64(activation, z)


cdef inline floating derivative(int activation, floating x) noexcept nogil:
    """f'(z) from x: the layer's input z when nncore_activation_reads_input, else its output (ops.h)."""
    if floating is float:
        return nncore_derivative_f32(activation, x)
    else:
        return nncore_derivative_f64(activation, x)
