"""One registration decorator for every serializable kerassl class.

`@register` wraps `keras.saving.register_keras_serializable(package="kerassl")`
and refuses a name that another class already holds, so a `.keras` file always
loads the class that wrote it. It also records each class, so the zoo knows
which modules to import before it deserializes, and a test can round-trip
every registered class.

Example:
```python
from kerassl.registry import register

@register
class MyHead(keras.layers.Layer):
    ...
```
"""

import keras

PACKAGE = "kerassl"

# "kerassl>Name" -> class, in registration order.
REGISTERED = {}
# Names that 0.1.0 wrote and that now resolve to a loader of their own
# (e.g. "kerassl>TransformerBlock", once shared by two classes).
LEGACY_NAMES = {}


def registered_name(cls_or_name):
    name = cls_or_name if isinstance(cls_or_name, str) else cls_or_name.__name__
    return f"{PACKAGE}>{name}"


def _same_class(a, b):
    # A module reloaded (importlib.reload, pytest's re-imports) makes a new class
    # object for the same definition: that is not a clash.
    return a is b or (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def register(cls=None, *, name=None, legacy=False):
    """Registers a class for `.keras` files under `kerassl>{name or cls.__name__}`.

    Args:
        cls: the class (when used as a bare `@register`).
        name: str or None. The registered name; default the class name.
        legacy: bool. The class only loads files of an earlier release under
            a name no class of this release holds; it is kept out of
            `registered_classes()`.

    Raises:
        ValueError: the name is already taken by another class.

    Example:
    >>> @kerassl.registry.register(name="ViTTransformerBlock")
    ... class TransformerBlock(keras.layers.Layer): ...
    """

    def decorate(cls):
        key = registered_name(name or cls.__name__)
        table = LEGACY_NAMES if legacy else REGISTERED
        for other_table in (REGISTERED, LEGACY_NAMES):
            taken = other_table.get(key)
            if taken is not None and not _same_class(taken, cls):
                raise ValueError(
                    f"The name {key!r} is already registered by {taken.__module__}."
                    f"{taken.__qualname__}; give {cls.__module__}.{cls.__qualname__} "
                    f"another one with @register(name=...)."
                )
        table[key] = cls
        return keras.saving.register_keras_serializable(
            package=PACKAGE, name=name or cls.__name__
        )(cls)

    return decorate(cls) if cls is not None else decorate


def registered_classes():
    """`{"kerassl>Name": class}` for every class of this release.

    Example:
    >>> "kerassl>SimCLR" in kerassl.registry.registered_classes()
    True
    """
    return dict(REGISTERED)


def registered_modules():
    """The modules that define registered classes (legacy loaders included), sorted."""
    return sorted({cls.__module__ for cls in (*REGISTERED.values(), *LEGACY_NAMES.values())})
