"""converters.export_c_array: a .tflite model as C++ source for a firmware build.

Like `xxd -i`, but ready for TFLM: the array is `alignas(16)` (TFLM reads
tensors and flatbuffer tables in place), `const` so it stays in flash, and the
header declares it and its length under a name the caller chooses.
"""
import collections
import os
import re

from converters.interop import atomic_write

class CArray(collections.namedtuple("CArray", ["header", "source", "header_name",
                                              "source_name"])):
    """The two files' text and names; `write(directory)` saves them there."""

    def write(self, directory):
        """Writes both files into `directory` (created if needed); their paths."""
        os.makedirs(directory, exist_ok=True)
        paths = []
        for name, text in ((self.header_name, self.header),
                           (self.source_name, self.source)):
            paths.append(os.path.join(directory, name))
            atomic_write.write_atomically(paths[-1], text)
        return paths
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Names that would not compile as a C and C++ identifier are refused here
# rather than by the firmware build: C11 and C++20 keywords, C++ alternative
# tokens, and names the headers or the program already use.
_C11_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double",
    "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
    "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
    "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Alignas",
    "_Alignof", "_Atomic", "_Bool", "_Complex", "_Generic", "_Imaginary", "_Noreturn",
    "_Static_assert", "_Thread_local"}
_CPP20_KEYWORDS = {
    "alignas", "alignof", "asm", "auto", "bool", "break", "case", "catch", "char",
    "char8_t", "char16_t", "char32_t", "class", "concept", "const", "consteval",
    "constexpr", "constinit", "const_cast", "continue", "co_await", "co_return",
    "co_yield", "decltype", "default", "delete", "do", "double", "dynamic_cast", "else",
    "enum", "explicit", "export", "extern", "false", "float", "for", "friend", "goto",
    "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "nullptr",
    "operator", "private", "protected", "public", "register", "reinterpret_cast",
    "requires", "return", "short", "signed", "sizeof", "static", "static_assert",
    "static_cast", "struct", "switch", "template", "this", "thread_local", "throw",
    "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using",
    "virtual", "void", "volatile", "wchar_t", "while"}
_CPP_ALTERNATIVE_TOKENS = {"and", "and_eq", "bitand", "bitor", "compl", "not", "not_eq",
                           "or", "or_eq", "xor", "xor_eq"}
# Macros of <stddef.h> / <stdbool.h> / <iso646.h> and the program's entry point.
_TAKEN_NAMES = {"main", "NULL", "bool", "true", "false", "offsetof", "assert", "errno",
                "EOF", "stdin", "stdout", "stderr", "__cplusplus", "__STDC__"}
RESERVED_NAMES = frozenset(_C11_KEYWORDS | _CPP20_KEYWORDS | _CPP_ALTERNATIVE_TOKENS
                           | _TAKEN_NAMES)


def _name_problem(name):
    """Why `name` cannot be the array's name in C and C++, or None."""
    if not isinstance(name, str):
        return f"name must be a str, got {type(name).__name__}"
    if not _IDENTIFIER.match(name):
        return (f"name must be a C identifier (letters, digits and '_', not starting "
                f"with a digit), got {name!r}")
    if name in RESERVED_NAMES:
        return (f"name must be a C identifier that is not a C11 / C++20 keyword or a "
                f"reserved name (main, NULL, ...), got {name!r}")
    if "__" in name or re.match(r"_[A-Z]", name):
        return (f"name must be a C identifier not reserved for the implementation (no "
                f"'__', no leading '_' and capital letter), got {name!r}")
    return None


def _include_guard(name):
    """An include guard unique to `name` (model and MODEL differ): lowercase
    letters and digits are upper-cased, a capital X becomes "_X" and "_"
    becomes "_0", which decodes one way only and never gives "__"."""
    def encode(char):
        if char == "_":
            return "_0"
        return "_" + char if char.isupper() else char.upper()

    # The fixed "..._N" keeps a leading "_X" from making "__".
    return "RNNPOOL_MODEL_N" + "".join(encode(c) for c in name) + "_H"


_BYTES_PER_LINE = 12


def export_c_array(model_bytes, name):
    """The `<name>.h` / `<name>.cc` pair holding a model for a firmware build.

    The header declares `extern const unsigned char <name>[];` and
    `extern const unsigned int <name>_len;`; the source defines them, the
    array aligned to 16 bytes. Pass `<name>` to `tflite::GetModel`.

    Args:
      model_bytes: the .tflite flatbuffer (e.g. from `converters.convert`).
      name: a C identifier for the array, e.g. "rnnpool_model".
    Returns:
      CArray(header, source, header_name, source_name): the two files' text and
      their file names.
    """
    if not isinstance(model_bytes, (bytes, bytearray, memoryview)):
        raise TypeError(f"model_bytes must be bytes, got {type(model_bytes).__name__}")
    model_bytes = bytes(model_bytes)
    if not model_bytes:
        raise ValueError("model_bytes is empty")
    problem = _name_problem(name)
    if problem:
        raise (TypeError if not isinstance(name, str) else ValueError)(problem)
    guard = _include_guard(name)
    header = (
        f"// {name}: a TFLite model, {len(model_bytes)} bytes. Generated by\n"
        f"// converters.export_c_array (rnnpool-keras); do not edit.\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        f"extern const unsigned char {name}[];\n"
        f"extern const unsigned int {name}_len;\n\n"
        f"#endif  // {guard}\n")
    lines = []
    for start in range(0, len(model_bytes), _BYTES_PER_LINE):
        chunk = model_bytes[start:start + _BYTES_PER_LINE]
        lines.append("    " + ", ".join(f"0x{byte:02x}" for byte in chunk) + ",")
    source = (
        f"// {name}: a TFLite model. Generated by converters.export_c_array; do not edit.\n"
        f'#include "{name}.h"\n\n'
        "// 16-byte aligned: TFLM reads the model's tensors in place.\n"
        f"alignas(16) const unsigned char {name}[] = {{\n"
        + "\n".join(lines) + "\n};\n"
        f"const unsigned int {name}_len = {len(model_bytes)};\n")
    return CArray(header, source, f"{name}.h", f"{name}.cc")
