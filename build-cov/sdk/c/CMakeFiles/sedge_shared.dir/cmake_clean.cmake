file(REMOVE_RECURSE
  "../../libsedge.pdb"
  "../../libsedge.so"
  "../../libsedge.so.0"
  "../../libsedge.so.0.1.0"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_shared.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
