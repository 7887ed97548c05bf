file(REMOVE_RECURSE
  "../../libsedge.a"
  "../../libsedge.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_static.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
