file(REMOVE_RECURSE
  "CMakeFiles/sedge_deploy.dir/src/deploy/deploy.c.o"
  "CMakeFiles/sedge_deploy.dir/src/deploy/deploy.c.o.d"
  "libsedge_deploy.a"
  "libsedge_deploy.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_deploy.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
