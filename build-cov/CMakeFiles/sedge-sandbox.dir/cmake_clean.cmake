file(REMOVE_RECURSE
  "CMakeFiles/sedge-sandbox.dir/src/sandbox/confine.c.o"
  "CMakeFiles/sedge-sandbox.dir/src/sandbox/confine.c.o.d"
  "CMakeFiles/sedge-sandbox.dir/src/sandbox/main.c.o"
  "CMakeFiles/sedge-sandbox.dir/src/sandbox/main.c.o.d"
  "CMakeFiles/sedge-sandbox.dir/src/sandbox/options.c.o"
  "CMakeFiles/sedge-sandbox.dir/src/sandbox/options.c.o.d"
  "CMakeFiles/sedge-sandbox.dir/src/sandbox/root.c.o"
  "CMakeFiles/sedge-sandbox.dir/src/sandbox/root.c.o.d"
  "generated/seccomp_filter.h"
  "sedge-sandbox"
  "sedge-sandbox.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge-sandbox.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
