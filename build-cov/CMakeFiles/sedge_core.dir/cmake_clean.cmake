file(REMOVE_RECURSE
  "CMakeFiles/sedge_core.dir/src/core/admin.c.o"
  "CMakeFiles/sedge_core.dir/src/core/admin.c.o.d"
  "CMakeFiles/sedge_core.dir/src/core/config.c.o"
  "CMakeFiles/sedge_core.dir/src/core/config.c.o.d"
  "CMakeFiles/sedge_core.dir/src/core/core.c.o"
  "CMakeFiles/sedge_core.dir/src/core/core.c.o.d"
  "CMakeFiles/sedge_core.dir/src/core/jobs.c.o"
  "CMakeFiles/sedge_core.dir/src/core/jobs.c.o.d"
  "CMakeFiles/sedge_core.dir/src/core/shadow_sync.c.o"
  "CMakeFiles/sedge_core.dir/src/core/shadow_sync.c.o.d"
  "libsedge_core.a"
  "libsedge_core.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_core.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
