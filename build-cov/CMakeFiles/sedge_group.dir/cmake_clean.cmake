file(REMOVE_RECURSE
  "CMakeFiles/sedge_group.dir/src/group/group.c.o"
  "CMakeFiles/sedge_group.dir/src/group/group.c.o.d"
  "libsedge_group.a"
  "libsedge_group.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_group.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
