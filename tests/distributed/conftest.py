"""Virtual devices for the data-parallel tests, set before the backend starts.

These tests run in their own pytest process (`make test-distributed` runs it once
per backend; CI runs it after `make test`) with `KERASSL_TEST_DEVICES=4`: JAX gets 4 host devices
(`--xla_force_host_platform_device_count`, `jax_num_cpu_devices`), TensorFlow
4 logical CPU devices for a MirroredStrategy. Without the variable (the main
suite's process, whose backend has already started) they are not collected.
"""

import os

DEVICES = int(os.environ.get("KERASSL_TEST_DEVICES", "0") or 0)

if not DEVICES:
    collect_ignore_glob = ["test_*.py"]
else:
    import keras

    if keras.config.backend() == "jax":
        import jax

        jax.config.update("jax_num_cpu_devices", DEVICES)
    elif keras.config.backend() == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(DEVICES)]
        )
