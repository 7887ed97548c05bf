file(REMOVE_RECURSE
  "CMakeFiles/sedge_pki.dir/src/pki/pki.c.o"
  "CMakeFiles/sedge_pki.dir/src/pki/pki.c.o.d"
  "libsedge_pki.a"
  "libsedge_pki.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_pki.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
