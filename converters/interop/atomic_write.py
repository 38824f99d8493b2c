"""Writing a file so that a failure never leaves a half-written one."""
import os
import tempfile


def write_atomically(path, data):
    """Writes `data` (bytes or str) to `path` through a temporary file in the
    same directory and a rename: readers see the old file or the new one,
    never a truncated mix, and an error leaves the old file untouched."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-",
                                         suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(handle, "wb" if isinstance(data, bytes) else "w") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
