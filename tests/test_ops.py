"""One seam: the compiled core's op codes (src_c/ops.h) are the Python registries' codes, by name."""
import numpy as np
import pytest

from nncore import _core, _testing
from nncore.activations import ACTIVATIONS
from nncore.losses import LOSSES
from nncore.optim import OPTIMIZERS


def test_every_activation_has_the_same_code_in_the_core_and_the_registry():
    assert _core.OP_CODES["activation"] == {name: entry.code for name, entry in ACTIVATIONS.items()}


def test_every_loss_has_the_same_code_in_the_core_and_the_registry():
    assert _core.OP_CODES["loss"] == {name: entry.code for name, entry in LOSSES.items()}


def test_every_optimizer_kind_is_known_to_the_core_with_its_state_buffers():
    assert set(_core.OP_CODES["optimizer"]) == set(OPTIMIZERS)
    assert _core.OPTIMIZER_STATES == {kind: len(cls.buffer_names) for kind, cls in OPTIMIZERS.items()}


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_an_optimizers_configuration_names_only_fields_the_core_reads(kind):
    config = OPTIMIZERS[kind]().core_config()
    assert config["kind"] == kind
    assert set(config) - {"kind"} <= set(_core.OPTIMIZER_FIELDS)


def test_the_core_refuses_an_unknown_optimizer_field_or_kind():
    network_table = np.array([4, 3, 0, 12, 0], dtype=np.intp)
    params, state = np.zeros(15), np.zeros(15)
    X, y, order = np.zeros((2, 4)), np.zeros(2, np.int32), np.arange(2)
    common = dict(batch_size=2, loss="cross_entropy", states=[state], loss_total=np.zeros(1),
                  progress=np.zeros(4, np.intp))
    with pytest.raises(ValueError, match="unknown optimizer fields"):
        _core.train_epoch(network_table, params, X, y, order, optimizer={"kind": "sgd", "learning_rate": 1}, **common)
    with pytest.raises(ValueError, match="unknown optimizer kind"):
        _core.train_epoch(network_table, params, X, y, order, optimizer={"kind": "lbfgs"}, **common)
    with pytest.raises(ValueError, match="state buffer"):
        _core.train_epoch(network_table, params, X, y, order, optimizer={"kind": "adam", "lr": 0.1}, **common)
    with pytest.raises(ValueError, match="unknown loss"):
        _core.train_epoch(network_table, params, X, y, order, optimizer={"kind": "sgd"},
                          **dict(common, loss="hinge"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_activation_is_one_definition_in_every_kernel(name, dtype):
    """The element-wise kernel and the narrow kernels' epilogue both apply ops.h's definition,
    which is the registry's NumPy one to rounding (float64) or a few ulps (float32)."""
    activation = ACTIVATIONS[name]
    rng = np.random.default_rng(3)
    Z = (rng.standard_normal((5, 11)) * 4).astype(dtype)
    expected = activation.forward(Z.copy())
    elementwise = Z.copy()
    _testing.bias_activation_forward(elementwise, np.zeros(11, dtype), activation.code)
    narrow = np.empty_like(Z)
    _testing.narrow_forward(narrow, Z, np.eye(11, dtype=dtype), activation=name)
    tolerance = dict(rtol=1e-14, atol=1e-15) if dtype == np.float64 else dict(rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(elementwise, expected, **tolerance)
    np.testing.assert_allclose(narrow, expected, **tolerance)
