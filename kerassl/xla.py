"""`jit_compile="auto"`: whether XLA compiles a model's steps, by backend, device and architecture.

One rule for every place kerassl compiles: `SSLMethod.compile` (so
`model.compile()` in the Python API), `finetune`, the linear probe and the
`kerassl pretrain` command. Keras' own "auto" turns XLA off on every CPU;
kerassl's measured that a CPU runs Vision Transformers faster with it and
ResNets slower (benchmarks/README.md), so it decides per architecture there.
"""

import os

import keras

# KERASSL_XLA_ON_CPU: "auto" (default; the per-architecture rule below), "off" (never
# on a CPU, as Keras' own "auto") or "on". The test suite sets "off": its tiny models
# spend longer in XLA's compiler than in their few steps.
CPU_RULE_VARIABLE = "KERASSL_XLA_ON_CPU"

# Why each choice was made, as `explain_jit_compile` reports it.
REASONS = {
    "explicit": "asked for explicitly",
    "jax": "JAX: every step is jit-compiled (op by op would be slow)",
    "strategy": "a tf.distribute strategy with several replicas: Keras keeps XLA off there",
    "gpu": "TensorFlow with a GPU visible: XLA fuses the step",
    "vit": "TensorFlow on a CPU, a Vision Transformer: XLA measured faster (MAE 1.48x, DINO 1.36x)",
    "no_jit_layer": "TensorFlow on a CPU: a layer cannot be XLA-compiled (supports_jit=False)",
    "conv": "TensorFlow on a CPU, no Vision Transformer: oneDNN measured faster (ResNet-18 54 vs 31 img/s)",
    "unknown": "TensorFlow on a CPU and no model to judge: off",
    "cpu_off": "TensorFlow on a CPU, KERASSL_XLA_ON_CPU=off",
    "cpu_on": "TensorFlow on a CPU, KERASSL_XLA_ON_CPU=on",
    "other": "this backend: off",
}


def explain_jit_compile(jit_compile="auto", model=None):
    """`(choice, reason)`: the bool `jit_compile="auto"` resolves to, and why.

    JAX: always True (without jit it runs op by op). TensorFlow: False under a
    `tf.distribute` strategy with several replicas (as Keras' own "auto");
    True on a GPU; on a CPU, what measured fastest for the architecture
    (benchmarks/README.md): True for a model holding a kerassl Vision
    Transformer (matmuls, which XLA's CPU backend runs well: MAE 1.48x, DINO
    1.36x faster) unless one of its layers cannot be compiled, False otherwise
    (ResNets: XLA's CPU convolution backward pass is slower than oneDNN's, 31
    against 54 images/s); the environment variable `KERASSL_XLA_ON_CPU` ("on"
    or "off") replaces that CPU rule. Torch: False. An explicit bool (or
    "true"/"false" from a command line) is returned as it is.

    Args:
        jit_compile: "auto" or bool (or "true"/"false").
        model: keras model or None. The model to be compiled; None: no
            architecture is known, so a CPU gets False.

    Returns:
        `(bool, str)`.

    Example:
    >>> kerassl.xla.explain_jit_compile("auto", kerassl.backbones.resnet18(input_shape=(32, 32, 3)))
    (False, 'TensorFlow on a CPU, no Vision Transformer: oneDNN measured faster (...)')
    """
    if isinstance(jit_compile, str) and jit_compile.lower() in ("true", "false", "1", "0"):
        return jit_compile.lower() in ("true", "1"), REASONS["explicit"]
    if isinstance(jit_compile, str) and jit_compile != "auto":
        raise ValueError(f'jit_compile must be "auto", True or False; got {jit_compile!r}.')
    if jit_compile != "auto":
        return bool(jit_compile), REASONS["explicit"]
    backend = keras.config.backend()
    if backend == "jax":
        return True, REASONS["jax"]
    if backend != "tensorflow":
        return False, REASONS["other"]
    import tensorflow as tf

    strategy = getattr(model, "_distribute_strategy", None) or (
        tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
    )
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        return False, REASONS["strategy"]
    try:
        if keras.distribution.list_devices("gpu"):
            return True, REASONS["gpu"]
    except Exception:  # no GPU platform registered at all
        pass
    rule = os.environ.get(CPU_RULE_VARIABLE, "auto").strip().lower() or "auto"
    if rule not in ("auto", "on", "off"):
        raise ValueError(f'{CPU_RULE_VARIABLE} must be "auto", "on" or "off"; got {rule!r}.')
    if rule != "auto":
        return rule == "on", REASONS[f"cpu_{rule}"]
    if model is None:
        return False, REASONS["unknown"]
    return _cpu_choice(model)


def resolve_jit_compile(jit_compile="auto", model=None):
    """Resolves `jit_compile="auto"` to a bool for the current backend, device and model.

    The choice of `explain_jit_compile`, without the reason.

    Args:
        jit_compile: "auto" or bool (or "true"/"false" from a command line).
        model: keras model or None. The model to be compiled; None: no
            architecture is known, so a CPU gets False.

    Example:
    >>> from kerassl.finetune import resolve_jit_compile
    >>> resolve_jit_compile("auto")  # TensorFlow on a CPU
    False
    """
    return explain_jit_compile(jit_compile, model)[0]


def _cpu_choice(model):
    from kerassl.backbones.vit import VisionTransformer

    layers = list(model._flatten_layers(include_self=True))
    if not all(getattr(layer, "supports_jit", True) for layer in layers):
        return False, REASONS["no_jit_layer"]
    if any(isinstance(layer, VisionTransformer) for layer in layers):
        return True, REASONS["vit"]
    return False, REASONS["conv"]
