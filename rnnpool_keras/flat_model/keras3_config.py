"""Keras 3 layer configs rewritten as tf_keras constructor arguments.

Keras 3 serialises nested objects as {"module", "class_name", "config",
"registered_name"} and its dtype as a DTypePolicy; it also has options that
tf_keras lacks (e.g. Dense's `quantization_config`). An option tf_keras does
not know is dropped only when it holds Keras 3's default (so it cannot change
what the layer computes); otherwise the rebuild stops and names it.
"""
import inspect

import tf_keras

# Options every tf_keras layer takes through **kwargs (base Layer).
_BASE_LAYER_OPTIONS = frozenset((
    "name", "trainable", "dtype", "input_shape", "batch_input_shape", "batch_size",
    "weights", "activity_regularizer", "autocast", "input_dim"))
# Modules whose serialised objects are rebuilt from tf_keras' namesake.
_OBJECT_MODULES = {"keras.initializers": tf_keras.initializers,
                   "keras.regularizers": tf_keras.regularizers,
                   "keras.constraints": tf_keras.constraints}


def _parameters(cls):
    """{name: default} of `cls.__init__`'s named parameters (default `_NONE`)."""
    return {name: parameter.default
            for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and parameter.kind not in (parameter.VAR_KEYWORD,
                                                         parameter.VAR_POSITIONAL)}


def _known_options(config, target_cls, source_cls, where, base_options=frozenset()):
    """`config` without the options `target_cls` lacks; those must hold their
    `source_cls` default (they cannot change the function), else ValueError."""
    known = set(_parameters(target_cls)) | base_options
    source_defaults = _parameters(source_cls) if source_cls is not None else {}
    kept = {}
    for key, value in config.items():
        if key in known:
            kept[key] = value
        elif key in source_defaults and _same(source_defaults[key], value):
            continue
        elif value is None:
            continue
        else:
            raise ValueError(
                f"{where}: option `{key}`={value!r} has no tf_keras counterpart "
                f"({target_cls.__module__}.{target_cls.__name__}); leave it at its "
                f"default to quantize and convert this model")
    return kept


def _same(default, value):
    try:
        return default == value or (default is None and value in (None, False))
    except Exception:  # arrays and other values with no plain ==
        return False


def _serialised_object(value, where):
    """A Keras 3 initializer / regularizer / constraint dict -> tf_keras object."""
    module = _OBJECT_MODULES.get(value.get("module"))
    if module is None:
        raise ValueError(f"{where}: {value.get('module')}.{value.get('class_name')} has "
                         "no tf_keras counterpart; use a built-in Keras initializer, "
                         "regularizer or constraint")
    target = getattr(module, value["class_name"], None)
    if target is None:
        raise ValueError(f"{where}: {value['module']}.{value['class_name']} has no "
                         "tf_keras counterpart")
    import keras

    source = getattr(getattr(keras, value["module"].split(".")[1]),
                     value["class_name"], None)
    options = _known_options(value.get("config") or {}, target, source, where)
    return target(**options)


def tf_keras_config(config, target_cls, source_cls, where):
    """The tf_keras constructor arguments of a Keras 3 layer's `get_config()`.

    Args:
      config: the Keras 3 layer's config.
      target_cls: the tf_keras layer class to build.
      source_cls: the Keras 3 layer's class (its defaults decide what may drop).
      where: how to name the layer in errors, e.g. "layer 'conv' (Conv2D)".
    """
    translated = {}
    for key, value in config.items():
        if key == "dtype" and isinstance(value, dict):
            value = value.get("config", {}).get("name", "float32")
        elif isinstance(value, dict) and "class_name" in value and "module" in value:
            value = _serialised_object(value, f"{where}, option `{key}`")
        translated[key] = value
    return _known_options(translated, target_cls, source_cls, where, _BASE_LAYER_OPTIONS)
