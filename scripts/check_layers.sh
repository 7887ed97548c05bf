#!/bin/sh
# The build enforces which modules a module may include (CMakeLists.txt:
# each module sees only the include roots of the modules below it). A
# relative include reaching into another folder would go round that;
# none is allowed.
set -eu
cd "$(dirname "$0")/.."
bad=$(grep -rnE '#include "\.\./' src sdk tests bench examples 2>/dev/null || true)
if [ -n "$bad" ]; then
    echo "includes that reach out of their module's folder (use the module's header):" >&2
    echo "$bad" >&2
    exit 1
fi
