file(REMOVE_RECURSE
  "CMakeFiles/sedge_routing.dir/src/routing/routing.c.o"
  "CMakeFiles/sedge_routing.dir/src/routing/routing.c.o.d"
  "libsedge_routing.a"
  "libsedge_routing.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_routing.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
