/* The op codes of nncore's compiled core, and each activation's scalar maths: defined once, here.
 *
 * The Python registries (nncore/activations.py, nncore/losses.py, nncore/optim.py) hold the same
 * codes under the same names; nncore._core.OP_CODES reads this file's tables and
 * tests/test_ops.py holds the two against each other. The element-wise kernels (_kernels.pxd)
 * and the narrow kernels (narrow_impl.h) apply an activation only through nncore_activate_* and
 * nncore_derivative_*; ReLU alone also has vector fast paths there, so every code is correct by
 * default and fast by choice.
 *
 * Adding an activation: a line in NNCORE_ACTIVATION_LIST and a case in each of the functions
 * below (and, when its derivative needs the layer's input, in nncore_activation_reads_input),
 * then its entry in nncore/activations.py. Adding an optimizer: a line in NNCORE_OPTIMIZER_LIST,
 * any new hyperparameter as a field of nncore_optimizer_config, its class in nncore/optim.py, and
 * its update kernel with its case in apply_update (_kernels.pxd).
 */
#ifndef NNCORE_OPS_H
#define NNCORE_OPS_H

#include <math.h>

/* X-macro lists, in code order: X(CONSTANT, "registry name"), optimizers with their state count. */
#define NNCORE_ACTIVATION_LIST(X) \
    X(IDENTITY, "identity") X(LOGISTIC, "logistic") X(TANH, "tanh") X(RELU, "relu") \
    X(LEAKY_RELU, "leaky_relu") X(GELU, "gelu")
#define NNCORE_LOSS_LIST(X) X(CROSS_ENTROPY, "cross_entropy") X(MSE, "mse")
/* The state count is how many buffers (each like the flat parameter buffer) the update reads. */
#define NNCORE_OPTIMIZER_LIST(X) X(SGD, "sgd", 1) X(ADAM, "adam", 2) X(RMSPROP, "rmsprop", 3) X(ADAMW, "adamw", 2)

#define NNCORE_ACTIVATION_ENUM_(name, text) NNCORE_ACTIVATION_##name,
#define NNCORE_LOSS_ENUM_(name, text) NNCORE_LOSS_##name,
#define NNCORE_OPTIMIZER_ENUM_(name, text, states) NNCORE_OPTIMIZER_##name,
#define NNCORE_NAME_(name, text, ...) text,
#define NNCORE_STATES_(name, text, states) states,

enum nncore_activation { NNCORE_ACTIVATION_LIST(NNCORE_ACTIVATION_ENUM_) NNCORE_ACTIVATION_COUNT };
enum nncore_loss { NNCORE_LOSS_LIST(NNCORE_LOSS_ENUM_) NNCORE_LOSS_COUNT };
enum nncore_optimizer { NNCORE_OPTIMIZER_LIST(NNCORE_OPTIMIZER_ENUM_) NNCORE_OPTIMIZER_COUNT };

static const char* const nncore_activation_names[] = {NNCORE_ACTIVATION_LIST(NNCORE_NAME_)};
static const char* const nncore_loss_names[] = {NNCORE_LOSS_LIST(NNCORE_NAME_)};
static const char* const nncore_optimizer_names[] = {NNCORE_OPTIMIZER_LIST(NNCORE_NAME_)};
static const int nncore_optimizer_states[] = {NNCORE_OPTIMIZER_LIST(NNCORE_STATES_)};

/* The most state buffers any optimizer reads. */
#define NNCORE_MAX_OPTIMIZER_STATES 4

/* An optimizer's hyperparameters, by name (nncore/optim.py's core_config() hands them over as a
 * mapping of these field names; a kind leaves the fields it does not read at 0). */
struct nncore_optimizer_config {
    int kind;               /* NNCORE_OPTIMIZER_* */
    double lr;
    double momentum;        /* SGD, RMSprop */
    int nesterov;           /* SGD */
    double weight_decay;    /* L2 added to the gradient; AdamW: decoupled, theta *= 1 - lr * weight_decay */
    double beta1, beta2;    /* Adam, AdamW */
    double eps;             /* Adam, AdamW, RMSprop */
    double alpha;           /* RMSprop: the squared gradients' smoothing constant */
    int centered;           /* RMSprop: divide by the gradient's estimated standard deviation */
    long long steps_taken;  /* updates applied before this call (Adam's bias correction counts from it) */
};

/* ---------------------------------------------------------------- activations
 *
 * f(z), and f'(z) written from what the backward pass keeps: the layer's output a = f(z) for
 * most activations (relu 1[a > 0], tanh 1 - a^2, logistic a (1 - a)); its input z for those
 * whose f' cannot be had from a (GELU is not monotonic), for which the passes keep z too. */

#define NNCORE_LEAKY_RELU_SLOPE 0.01                   /* PyTorch's default negative slope */
#define NNCORE_INV_SQRT_2PI 0.3989422804014327         /* 1 / sqrt(2 pi): the normal density at 0 */
#ifndef M_SQRT1_2
#define M_SQRT1_2 0.70710678118654752440
#endif

/* Whether nncore_derivative_* reads the layer's input z (else its output a). */
static inline int nncore_activation_reads_input(int activation) {
    return activation == NNCORE_ACTIVATION_GELU;
}

static inline double nncore_activate_f64(int activation, double z) {
    switch (activation) {
    case NNCORE_ACTIVATION_LOGISTIC: {
        /* (1 or e) / (1 + e) with e = exp(-|z|): never exp of a large positive number */
        double e = exp(-fabs(z));
        return (z >= 0 ? 1.0 : e) / (1.0 + e);
    }
    case NNCORE_ACTIVATION_TANH:
        return tanh(z);
    case NNCORE_ACTIVATION_RELU:
        return z < 0 ? 0.0 : z;                        /* NaN stays NaN: a diverged batch is still seen */
    case NNCORE_ACTIVATION_LEAKY_RELU:
        return z < 0 ? NNCORE_LEAKY_RELU_SLOPE * z : z;
    case NNCORE_ACTIVATION_GELU:                       /* the exact form, z * Phi(z) */
        return 0.5 * z * (1.0 + erf(z * M_SQRT1_2));
    default:
        return z;
    }
}

static inline float nncore_activate_f32(int activation, float z) {
    switch (activation) {
    case NNCORE_ACTIVATION_LOGISTIC: {
        float e = expf(-fabsf(z));
        return (z >= 0 ? 1.0f : e) / (1.0f + e);
    }
    case NNCORE_ACTIVATION_TANH:
        return tanhf(z);
    case NNCORE_ACTIVATION_RELU:
        return z < 0 ? 0.0f : z;
    case NNCORE_ACTIVATION_LEAKY_RELU:
        return z < 0 ? (float) NNCORE_LEAKY_RELU_SLOPE * z : z;
    case NNCORE_ACTIVATION_GELU:                       /* erf in double, rounded once, as SciPy's float32 erf */
        return 0.5f * z * (1.0f + (float) erf((double) (z * (float) M_SQRT1_2)));
    default:
        return z;
    }
}

/* f'(z) from x: the layer's input z when nncore_activation_reads_input, else its output a. */
static inline double nncore_derivative_f64(int activation, double x) {
    switch (activation) {
    case NNCORE_ACTIVATION_LOGISTIC:
        return x * (1.0 - x);
    case NNCORE_ACTIVATION_TANH:
        return 1.0 - x * x;
    case NNCORE_ACTIVATION_RELU:
        return x > 0 ? 1.0 : 0.0;
    case NNCORE_ACTIVATION_LEAKY_RELU:
        return x > 0 ? 1.0 : NNCORE_LEAKY_RELU_SLOPE;
    case NNCORE_ACTIVATION_GELU:                       /* Phi(z) + z phi(z) */
        return 0.5 * (1.0 + erf(x * M_SQRT1_2)) + x * exp(-0.5 * x * x) * NNCORE_INV_SQRT_2PI;
    default:
        return 1.0;
    }
}

static inline float nncore_derivative_f32(int activation, float x) {
    switch (activation) {
    case NNCORE_ACTIVATION_LOGISTIC:
        return x * (1.0f - x);
    case NNCORE_ACTIVATION_TANH:
        return 1.0f - x * x;
    case NNCORE_ACTIVATION_RELU:
        return x > 0 ? 1.0f : 0.0f;
    case NNCORE_ACTIVATION_LEAKY_RELU:
        return x > 0 ? 1.0f : (float) NNCORE_LEAKY_RELU_SLOPE;
    case NNCORE_ACTIVATION_GELU:
        return 0.5f * (1.0f + (float) erf((double) (x * (float) M_SQRT1_2)))
               + x * expf(-0.5f * x * x) * (float) NNCORE_INV_SQRT_2PI;
    default:
        return 1.0f;
    }
}

#endif /* NNCORE_OPS_H */
