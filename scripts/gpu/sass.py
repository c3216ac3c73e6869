"""Reading built binaries' SASS (cuobjdump -sass), shared by wgmma_serialized.py and sass_diff.py."""
import os
import re
import shutil
import subprocess


def find_cuobjdump():
    """cuobjdump from $CUOBJDUMP or PATH, or None."""
    return os.environ.get('CUOBJDUMP') or shutil.which('cuobjdump')


def kernel_instructions(binary, cuobjdump, pattern=''):
    """{mangled kernel name: [instructions without addresses or encodings]} of the kernels whose
    name contains `pattern`. Raises OSError / CalledProcessError where cuobjdump fails."""
    sass = subprocess.run([cuobjdump, '-sass', binary], check=True, capture_output=True, text=True).stdout
    found, name = {}, None
    for line in sass.splitlines():
        head = re.search(r'Function : (\S+)', line)
        if head:
            name = head.group(1) if pattern in head.group(1) else None
            if name:
                found[name] = []
            continue
        code = re.match(r'\s*/\*[0-9a-f]{4,}\*/\s*(.*?)\s*;', line)
        if name and code:
            found[name].append(code.group(1))
    return found
