"""Public path of converters.interop.edgeml (`converters.edgeml.load_state_dict`)."""
from converters.interop.edgeml import expected_keys, load_state_dict  # noqa: F401
