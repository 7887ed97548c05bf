file(REMOVE_RECURSE
  "CMakeFiles/sedge_base.dir/src/base/base.c.o"
  "CMakeFiles/sedge_base.dir/src/base/base.c.o.d"
  "CMakeFiles/sedge_base.dir/src/base/map.c.o"
  "CMakeFiles/sedge_base.dir/src/base/map.c.o.d"
  "libsedge_base.a"
  "libsedge_base.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_base.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
