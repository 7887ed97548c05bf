file(REMOVE_RECURSE
  "CMakeFiles/sedge_router.dir/src/router/router.c.o"
  "CMakeFiles/sedge_router.dir/src/router/router.c.o.d"
  "libsedge_router.a"
  "libsedge_router.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_router.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
