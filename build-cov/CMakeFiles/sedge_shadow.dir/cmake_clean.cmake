file(REMOVE_RECURSE
  "CMakeFiles/sedge_shadow.dir/src/shadow/doc.c.o"
  "CMakeFiles/sedge_shadow.dir/src/shadow/doc.c.o.d"
  "CMakeFiles/sedge_shadow.dir/src/shadow/service.c.o"
  "CMakeFiles/sedge_shadow.dir/src/shadow/service.c.o.d"
  "libsedge_shadow.a"
  "libsedge_shadow.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_shadow.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
