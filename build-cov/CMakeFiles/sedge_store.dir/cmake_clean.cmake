file(REMOVE_RECURSE
  "CMakeFiles/sedge_store.dir/src/store/store.c.o"
  "CMakeFiles/sedge_store.dir/src/store/store.c.o.d"
  "libsedge_store.a"
  "libsedge_store.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_store.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
